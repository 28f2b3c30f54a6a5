"""Webhook signatures: Stripe and Quickpay (inbound) and Standard Webhooks (outbound).

Every check works on the raw request bytes, never on re-serialised JSON, and compares digests
in constant time. Failures raise :class:`SignatureError` with a short reason that is safe to
log and to return in a 400 response: it never contains a secret or an expected digest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import string
from collections.abc import Iterable, Sequence

from dunning.errors import ConfigError, PermanentError

STANDARD_PREFIX = "whsec_"
STANDARD_TOLERANCE_S = 300
_HEX = frozenset(string.hexdigits)


class SignatureError(PermanentError):
    """A webhook failed its signature check; ``reason`` is short and loggable."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"bad webhook signature: {reason}")
        self.reason = reason


def _hmac_sha256(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def _any_equal(expected: Iterable[bytes], given: Sequence[bytes]) -> bool:
    # Compare every pair without stopping early: the time taken says nothing about a match.
    found = False
    for e in expected:
        for g in given:
            found |= hmac.compare_digest(e, g)
    return found


def _check_age(timestamp: int, now_s: float, tolerance_s: int) -> None:
    # Both directions: a timestamp far in the future is as suspicious as an old one.
    if abs(now_s - timestamp) > tolerance_s:
        raise SignatureError("stale timestamp")


# -- Stripe ------------------------------------------------------------------------------------


def _parse_stripe_header(header: str) -> tuple[int, list[bytes]]:
    timestamps: list[str] = []
    v1: list[bytes] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("malformed header")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            v1.append(value.strip().encode("utf-8", "replace"))
        # Other schemes (v0 is Stripe's test scheme) are ignored, as Stripe's libraries do.
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        raise SignatureError("malformed header")
    if len(timestamps[0]) > 12:
        raise SignatureError("malformed header")
    return int(timestamps[0]), v1


def stripe_signature(body: bytes, secret: str, t: int) -> str:
    """The hex ``v1`` of ``body`` signed at unix time ``t``."""
    return hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()


def sign_stripe(body: bytes, secret: str, t: int) -> str:
    """A ``Stripe-Signature`` header value for ``body`` (tests, the bench, the simulator)."""
    return f"t={t},v1={stripe_signature(body, secret, t)}"


def verify_stripe(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now_s: float,
    tolerance_s: int,
) -> int:
    """Check a ``Stripe-Signature`` header against every configured secret; return ``t``.

    Any ``v1`` matching any secret passes, so rotating a secret needs no downtime: configure
    both until the old one is rolled. A signed but old (or far-future) timestamp is refused
    with ``stale timestamp``, which is what a replayed request looks like.
    """
    keys = [s for s in secrets if s]
    if not keys:
        raise SignatureError("no secret configured")
    if not header or not header.strip():
        raise SignatureError("missing header")
    timestamp, given = _parse_stripe_header(header)
    if not given:
        raise SignatureError("no v1 signature")
    expected = (stripe_signature(body, k, timestamp).encode() for k in keys)
    if not _any_equal(expected, given):
        raise SignatureError("signature mismatch")
    _check_age(timestamp, now_s, tolerance_s)
    return timestamp


# -- Quickpay ----------------------------------------------------------------------------------


def sign_quickpay(body: bytes, private_key: str) -> str:
    """A ``QuickPay-Checksum-Sha256`` header value: lowercase hex HMAC-SHA256 of the body."""
    return hmac.new(private_key.encode(), body, hashlib.sha256).hexdigest()


def verify_quickpay(body: bytes, header: str | None, private_key: str) -> None:
    """Check a ``QuickPay-Checksum-Sha256`` header, keyed with the account's private key.

    Quickpay sends no timestamp: replays are caught by deduplicating on payment and operation
    id, not here.
    """
    if not private_key:
        raise SignatureError("no secret configured")
    if not header or not header.strip():
        raise SignatureError("missing header")
    given = header.strip().lower()
    if len(given) != 64 or not set(given) <= _HEX:
        raise SignatureError("malformed header")
    expected = sign_quickpay(body, private_key).encode()
    if not hmac.compare_digest(expected, given.encode()):
        raise SignatureError("signature mismatch")


# -- Standard Webhooks (what we send to the merchant) -----------------------------------------


def _standard_key(secret: str) -> bytes:
    encoded = secret.removeprefix(STANDARD_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            "a webhook endpoint secret must be 'whsec_' followed by base64 key bytes"
        ) from None


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) of one outbound message."""
    payload = f"{msg_id}.{timestamp}.".encode() + body
    digest = _hmac_sha256(_standard_key(secret), payload)
    return "v1," + base64.b64encode(digest).decode()


def standard_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery of one message."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(secret, msg_id, timestamp, body),
    }


def verify_standard(
    secret: str,
    msg_id: str | None,
    timestamp: str | int | None,
    body: bytes,
    signature: str | None,
    *,
    now_s: float,
    tolerance_s: int = STANDARD_TOLERANCE_S,
) -> int:
    """Verify a Standard Webhooks message as a receiver would; return its timestamp.

    ``signature`` is the ``webhook-signature`` header: space-separated ``v1,<base64>`` entries
    (several while the merchant rotates a secret); other versions are ignored.
    """
    if not msg_id or timestamp is None or not signature:
        raise SignatureError("missing header")
    text = str(timestamp).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise SignatureError("malformed header")
    ts = int(text)
    given = [
        entry[3:].encode("utf-8", "replace")
        for entry in signature.split()
        if entry.startswith("v1,")
    ]
    if not given:
        raise SignatureError("no v1 signature")
    expected = sign_standard(secret, msg_id, ts, body)[3:].encode()
    if not _any_equal([expected], given):
        raise SignatureError("signature mismatch")
    _check_age(ts, now_s, tolerance_s)
    return ts
