"""Double-submit CSRF tokens bound to the card-update link.

The same value goes into a cookie (scoped to the link's path) and a hidden form field. A POST
passes when both are present, equal, and carry a valid HMAC over the link token: a forged form
on another site can neither read the cookie nor mint a value for this link.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from pydantic import SecretStr

COOKIE = "dunning_csrf"
FIELD = "csrf"
_DOMAIN = b"dunning-csrf:"  # keeps these MACs apart from the link MACs made with the same secret


def _b(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def _mac(secret: SecretStr, link_token: str, nonce: str) -> str:
    key = secret.get_secret_value().encode()
    message = _DOMAIN + _b(link_token) + b"|" + _b(nonce)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def new_token(secret: SecretStr, link_token: str) -> str:
    """A fresh ``<nonce>.<mac>`` for one page view of ``link_token``."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_mac(secret, link_token, nonce)}"


def check(secret: SecretStr, link_token: str, cookie: str | None, field: str | None) -> bool:
    """True when the cookie and the form field agree and were minted for this link."""
    if not cookie or not field or len(field) > 200:
        return False
    if not hmac.compare_digest(_b(cookie), _b(field)):
        return False
    nonce, dot, mac = field.partition(".")
    if not dot or not nonce:
        return False
    return hmac.compare_digest(_b(mac), _mac(secret, link_token, nonce).encode())
