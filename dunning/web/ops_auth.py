"""Who may use ``/ops``: HTTP Basic against the ops credentials, and the double-submit CSRF
token every ``/ops`` form POSTs.

The token is a cookie scoped to ``/ops`` and the same value in the form, MACed with a key
derived from the ops password. A browser sends Basic credentials to any site that asks, so a
forged cross-site form must not be enough; a POST whose ``Origin`` is another host is refused
as well.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from dunning.bootstrap import Container

REALM = 'Basic realm="dunning ops", charset="UTF-8"'
CSRF_COOKIE = "dunning_ops_csrf"
CSRF_FIELD = "csrf"


def operator(c: Container, header: str | None) -> str | None:
    """The ops user named by a valid ``Authorization: Basic`` header, else ``None``."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return None
    ops = c.settings.ops
    # Both compared, always: the time taken says nothing about which one was wrong.
    user_ok = hmac.compare_digest(user, ops.username.encode())
    password_ok = hmac.compare_digest(password, ops.password.get_secret_value().encode())
    return ops.username if sep and user_ok and password_ok else None


def authorized(c: Container, header: str | None) -> bool:
    return operator(c, header) is not None


def _csrf_key(c: Container) -> bytes:
    secret = c.settings.ops.password.get_secret_value().encode()
    return hashlib.sha256(b"dunning-ops-csrf:" + secret).digest()


def new_csrf(c: Container) -> str:
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{hmac.new(_csrf_key(c), nonce.encode(), hashlib.sha256).hexdigest()}"


def csrf_ok(c: Container, request: Request, field: str | None) -> bool:
    """The form's token equals the cookie's, carries a valid MAC, and came from this host."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not field or len(field) > 200:
        return False
    origin = request.headers.get("origin")
    # The pages are served with ``Referrer-Policy: no-referrer``, under which a browser sends
    # ``Origin: null`` with its own same-origin form posts: that says nothing either way, and
    # the token decides. A named origin must be this host.
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        return False
    if not hmac.compare_digest(cookie.encode(), field.encode()):
        return False
    nonce, _, mac = field.partition(".")
    expected = hmac.new(_csrf_key(c), nonce.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac.encode(), expected.encode())


def set_csrf_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        path="/ops",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def challenge() -> Response:
    return Response(
        "authentication required\n", status_code=401, headers={"WWW-Authenticate": REALM}
    )


def csrf_refused() -> Response:
    return Response("CSRF check failed; reload the page and try again\n", status_code=403)
