"""Signed, expiring card-update links bound to a customer, a purpose and a card generation.

A token is ``<payload>.<mac>``, both base64url without padding. The payload is
``v1|<purpose code>|<generation>|<expires unix s>|<customer id>``; the MAC is HMAC-SHA256 over
it. Any card change bumps the customer's generation, so the caller's
:meth:`LinkClaims.is_current` check kills every link sent before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import SecretStr

from dunning.errors import PermanentError

Reason = Literal["tampered", "expired", "malformed"]

_VERSION = "v1"
_MAX_CUSTOMER_ID = 64  # keeps every token under 200 characters
_DOMAIN = b"dunning-link:"  # separates these MACs from any other use of the secret
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class LinkPurpose(StrEnum):
    update_card = "update_card"
    reactivate = "reactivate"


_CODES = {LinkPurpose.update_card: "u", LinkPurpose.reactivate: "r"}
_PURPOSES = {code: purpose for purpose, code in _CODES.items()}


class LinkInvalid(PermanentError):
    """The link cannot be honoured; ``reason`` is ``tampered``, ``expired`` or ``malformed``."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"link is {reason}")
        self.reason: Reason = reason


@dataclass(frozen=True)
class LinkClaims:
    customer_id: str
    purpose: LinkPurpose
    generation: int
    expires_at: datetime

    def is_current(self, generation: int) -> bool:
        """True while the customer's card generation is still the one the link was made for."""
        return self.generation == generation


def _key(secret: SecretStr | bytes | str) -> bytes:
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    key = raw.encode("utf-8") if isinstance(raw, str) else raw
    if not key:
        raise ValueError("the link secret is empty; set DUNNING_LINK_SECRET")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    # strict and canonical: one token string per payload, so "used" marks cannot be dodged
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _DOMAIN + payload, hashlib.sha256).digest()


def _aware(when: datetime, name: str) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return when


def make_link_token(
    secret: SecretStr | bytes | str,
    *,
    customer_id: str,
    purpose: LinkPurpose | str,
    generation: int,
    expires_at: datetime,
) -> str:
    """Sign a URL-safe token; ``expires_at`` is usually now + ``settings.link_ttl_s``."""
    code = _CODES[LinkPurpose(purpose)]
    if not customer_id or len(customer_id.encode()) > _MAX_CUSTOMER_ID or "|" in customer_id:
        raise ValueError(f"customer id must be 1-{_MAX_CUSTOMER_ID} bytes without '|'")
    if generation < 0:
        raise ValueError("generation must not be negative")
    expires_s = int(_aware(expires_at, "expires_at").timestamp())
    payload = f"{_VERSION}|{code}|{generation}|{expires_s}|{customer_id}".encode()
    return f"{_b64(payload)}.{_b64(_mac(_key(secret), payload))}"


def _parse(payload: bytes) -> LinkClaims:
    try:
        version, code, generation, expires_s, customer_id = payload.decode("utf-8").split("|", 4)
        if version != _VERSION or code not in _PURPOSES or not customer_id:
            raise ValueError(version)
        return LinkClaims(
            customer_id=customer_id,
            purpose=_PURPOSES[code],
            generation=int(generation),
            expires_at=datetime.fromtimestamp(int(expires_s), UTC),
        )
    except (UnicodeDecodeError, ValueError, OverflowError, OSError):
        raise LinkInvalid("malformed") from None


def verify_link_token(secret: SecretStr | bytes | str, token: str, *, now: datetime) -> LinkClaims:
    """Check the signature (in constant time) and the expiry; return what the link claims.

    The caller still compares ``claims.generation`` with the database (``is_current``).
    """
    _aware(now, "now")
    body, dot, mac_text = token.partition(".")
    if not dot or not body or not mac_text or len(token) > 512:
        raise LinkInvalid("malformed")
    try:
        payload, mac = _unb64(body), _unb64(mac_text)
    except (binascii.Error, ValueError):
        raise LinkInvalid("malformed") from None
    if not hmac.compare_digest(mac, _mac(_key(secret), payload)):
        raise LinkInvalid("tampered")
    claims = _parse(payload)
    if now >= claims.expires_at:
        raise LinkInvalid("expired")
    return claims


def update_url(base_url: str, token: str) -> str:
    """The page a link opens: ``{base}/update/{token}``."""
    return f"{base_url.rstrip('/')}/update/{token}"


def fingerprint(token: str) -> str:
    """What logs and stored rows may show of a token: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:8]


def link_ref(purpose: LinkPurpose | str, generation: int, expires_at: datetime) -> dict[str, Any]:
    """What an email row stores to rebuild its link at sending: not the link, which is a bearer
    credential. With the customer's id and the secret, :func:`url_from_ref` makes it again."""
    expires_s = int(_aware(expires_at, "expires_at").timestamp())
    return {"purpose": str(LinkPurpose(purpose)), "generation": generation, "expires_at": expires_s}


def url_from_ref(
    secret: SecretStr | bytes | str, base_url: str, customer_id: str, ref: Mapping[str, Any]
) -> str:
    """The link :func:`link_ref` describes, the very token it was decided with."""
    token = make_link_token(
        secret,
        customer_id=customer_id,
        purpose=ref["purpose"],
        generation=int(ref["generation"]),
        expires_at=datetime.fromtimestamp(int(ref["expires_at"]), UTC),
    )
    return update_url(base_url, token)


# A token anywhere (payload, a dot, the 43-character MAC) and whatever follows /update/ in a
# path, bogus or not: both are replaced in every log line by the token's fingerprint.
_TOKEN_TEXT = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
_UPDATE_PATH = re.compile(r"(/update/)(?!\[link )([^/?#\s\"'<>]+)")


def hide_tokens(text: str) -> str:
    """``text`` with every card-update token replaced by ``[link <fingerprint>]``."""
    if "." not in text and "/update/" not in text:
        return text
    text = _UPDATE_PATH.sub(lambda m: f"{m.group(1)}[link {fingerprint(m.group(2))}]", text)
    return _TOKEN_TEXT.sub(lambda m: f"[link {fingerprint(m.group(0))}]", text)
