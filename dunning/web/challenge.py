"""The 3-D Secure step: the verified-but-unconfirmed card travels in a sealed field.

The sealed value holds the gateway token, the display details (never a number or CVC) and, on
Stripe, the SetupIntent the customer confirms. It is bound to the link by an HMAC and expires,
so a page cannot swap in another card or intent, or replay an old challenge.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool

from dunning.gateways.base import CardToken
from dunning.gateways.sandbox import SandboxGateway
from dunning.gateways.stripe import StripeGateway

MAX_AGE = timedelta(minutes=15)
_DOMAIN = b"dunning-challenge:"


def _mac(secret: SecretStr, link_token: str, body: bytes) -> str:
    key = secret.get_secret_value().encode()
    message = _DOMAIN + link_token.encode("utf-8", "replace") + b"|" + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal(
    secret: SecretStr,
    link_token: str,
    card: CardToken,
    *,
    remove_old: bool,
    now: datetime,
    intent: str | None = None,
) -> str:
    """A form value carrying ``card`` (and the gateway's ``intent`` the customer confirms)
    through the challenge."""
    data = {
        "intent": intent,
        "token": card.token,
        "network": card.network,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "remove_old": remove_old,
        "at": int(now.timestamp()),
    }
    body = base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode())
    return body.decode() + "." + _mac(secret, link_token, body)


def unseal(
    secret: SecretStr, link_token: str, sealed: str, now: datetime
) -> tuple[CardToken, bool, str | None]:
    """The card, the remove-old choice and the gateway's intent; ``ValueError`` when forged,
    mangled or too old."""
    body_text, dot, mac = sealed.partition(".")
    body = body_text.encode("ascii", "replace")
    if not dot or not hmac.compare_digest(
        mac.encode("ascii", "replace"), _mac(secret, link_token, body).encode()
    ):
        raise ValueError("challenge seal is not valid")
    try:
        data = json.loads(base64.urlsafe_b64decode(body))
        card = CardToken(
            token=str(data["token"]),
            network=str(data["network"]),
            last4=str(data["last4"]),
            exp_month=int(data["exp_month"]),
            exp_year=int(data["exp_year"]),
        )
        at, remove_old = int(data["at"]), bool(data["remove_old"])
        intent = data.get("intent")
        if intent is not None and not isinstance(intent, str):
            raise ValueError("challenge intent is not a string")
    except (binascii.Error, KeyError, TypeError, ValueError):
        raise ValueError("challenge seal is not valid") from None
    if not 0 <= now.timestamp() - at <= MAX_AGE.total_seconds():
        raise ValueError("challenge has expired")
    return card, remove_old, intent


async def authenticated(
    gateway: Any, card: CardToken, intent: str | None, result: Any
) -> CardToken:
    """The card once its challenge is done; ``ValueError`` when it is not. On Stripe the
    SetupIntent is read back from Stripe: what the page says happened does not count."""
    if isinstance(gateway, StripeGateway):
        if intent is None:
            raise ValueError("the challenge names no setup intent")
        verdict = await run_in_threadpool(lambda: gateway.setup_result(intent, token=card.token))
        if not verdict.ok:
            code = verdict.decline.decline_code if verdict.decline else "not confirmed"
            raise ValueError(f"3-D Secure not completed ({code})")
        return card
    if result != "approve":
        raise ValueError("the customer cancelled the challenge")
    if not isinstance(gateway, SandboxGateway):
        raise ValueError("this gateway has no challenge step on this page")
    return gateway.complete_challenge(card)
