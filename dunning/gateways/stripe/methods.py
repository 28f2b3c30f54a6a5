"""Payment methods: reading a card as Stripe holds it, detaching one."""

from __future__ import annotations

import logging
import uuid
from urllib.parse import quote

from dunning.gateways.base import CardToken
from dunning.gateways.stripe.answers import text
from dunning.gateways.stripe.http import StripeError, StripeHttp, refused

log = logging.getLogger(__name__)

# A payment method that is already gone: detaching it again is not an error.
_ALREADY_DETACHED = frozenset({"resource_missing", "payment_method_unexpected_state"})
NETWORKS = frozenset({"visa", "mastercard", "amex", "discover", "diners", "jcb", "unionpay"})


def _path(token: str, tail: str = "") -> str:
    return f"/v1/payment_methods/{quote(token, safe='')}{tail}"


def card(http: StripeHttp, token: str, *, deadline: float) -> CardToken:
    """Brand, last4 and expiry of the card behind ``token``, from Stripe."""
    status, body = http.call("GET", _path(token), deadline=deadline)
    if status != 200:
        raise refused(status, body)
    details = body.get("card")
    if text(body, "type") != "card" or not isinstance(details, dict):
        raise StripeError(f"stripe payment method {token} is not a card", status=status)
    last4, month, year = text(details, "last4"), details.get("exp_month"), details.get("exp_year")
    if not (last4 and isinstance(month, int) and isinstance(year, int)):
        raise StripeError(f"stripe payment method {token} has no card details", status=status)
    brand = (text(details, "brand") or "unknown").lower()
    return CardToken(
        token=token,
        network=brand if brand in NETWORKS else "unknown",
        last4=last4,
        exp_month=month,
        exp_year=year,
    )


def detach(http: StripeHttp, token: str, *, deadline: float) -> None:
    """Detach the payment method from its customer; an already detached one is fine."""
    path = _path(token, "/detach")
    status, body = http.call("POST", path, {}, f"detach-{uuid.uuid4()}", deadline=deadline)
    if status == 200:
        return
    error = body.get("error")
    if status == 404 or text(error, "code") in _ALREADY_DETACHED:
        log.info("stripe payment method %s was already detached", token)
        return
    raise refused(status, body)
