"""A webhook request's body: read within a size limit, decoded strictly, checked for storage.

Everything here refuses with :class:`MalformedEvent` (a 400) or :class:`BodyTooLarge` (a 413)
before anything is stored.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request

from dunning.webhooks.events import MalformedEvent


class BodyTooLarge(Exception):
    """The request body is over ``webhook_max_body_bytes``."""


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused once it is over ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise MalformedEvent("content-length: not a number")
        if int(declared) > limit:
            raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(body: bytes) -> dict[str, Any]:
    """A JSON object, strictly: no NaN or Infinity (PostgreSQL's JSON refuses them)."""
    try:
        payload = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise MalformedEvent("body: not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedEvent("body: not a JSON object")
    return payload


def storable(text: str, name: str, max_chars: int) -> str:
    """``text`` when it fits a column on every backend: printable, valid UTF-8, not too long.

    PostgreSQL refuses NUL characters and lone surrogates in text; SQLite would take them.
    """
    if not text or len(text) > max_chars or not text.isprintable():
        raise MalformedEvent(f"{name}: empty, too long or not printable")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedEvent(f"{name}: not valid text") from None
    return text
