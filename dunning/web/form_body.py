"""A form body read only after the request earned it, within a size and a time limit.

The card page checks the link first (a bogus link is refused without reading a byte), then
reads at most ``DUNNING_WEB__MAX_FORM_BYTES`` (declared or actually sent: 413) within
``DUNNING_WEB__FORM_READ_TIMEOUT_S`` (408), so a slow or huge upload cannot hold a worker.
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import FormData
from starlette.requests import Request

from config.web_settings import WebSettings


class FormRefused(Exception):
    """The body is not read to the end; ``status`` is 413 (too large) or 408 (too slow)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"form body refused: {status}")
        self.status = status


async def _read(request: Request, max_bytes: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise FormRefused(413)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request, web: WebSettings, *, max_fields: int) -> FormData:
    """The form, or :class:`FormRefused`."""
    max_bytes, timeout_s = web.max_form_bytes, web.form_read_timeout_s
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.strip().isdigit() or int(declared) > max_bytes):
        raise FormRefused(413)
    try:
        body = await asyncio.wait_for(_read(request, max_bytes), timeout_s)
    except TimeoutError:
        raise FormRefused(408) from None
    request._body = body  # the form parser reads it from here
    return await request.form(max_files=0, max_fields=max_fields)
