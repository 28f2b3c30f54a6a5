"""Reading the new card from the submitted form.

Sandbox mode: the card number is tokenized at once and dropped; the CVC is checked for shape
and dropped (the sandbox has no use for it, and nothing here may store or log it). Stripe mode:
Stripe.js collected the card, so only a ``payment_method`` id arrives; its brand, last4 and
expiry are read from Stripe, never taken from the browser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dunning.errors import PermanentError
from dunning.gateways.base import CardToken, Decline
from dunning.gateways.sandbox import CardRefused, SandboxGateway
from dunning.gateways.stripe import StripeError, StripeGateway

_NUMBER = re.compile(r"[0-9][0-9 -]{10,30}[0-9]")
_CVC = re.compile(r"[0-9]{3,4}")
_PM = re.compile(r"pm_[A-Za-z0-9_]{1,100}")


class FormError(PermanentError):
    """The form cannot be used; ``key`` names the message the page shows."""

    def __init__(self, key: str) -> None:
        super().__init__(f"card form refused: {key}")
        self.key = key


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _expiry(form: Mapping[str, Any], now: datetime) -> tuple[int, int]:
    month_text, year_text = _text(form, "exp_month"), _text(form, "exp_year")
    if not (month_text.isdigit() and year_text.isdigit()) or len(year_text) not in (2, 4):
        raise FormError("err_expiry")
    month, year = int(month_text), int(year_text)
    if len(year_text) == 2:
        year += 2000
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        raise FormError("err_expiry")
    if (year, month) < (now.year, now.month):
        raise FormError("err_expired")
    return month, year


def sandbox_card(gateway: Any, form: Mapping[str, Any], now: datetime) -> CardToken:
    """Validate the fields and tokenize the number with the sandbox gateway."""
    if not isinstance(gateway, SandboxGateway):
        raise FormError("err_unavailable")
    number = _text(form, "card_number")
    if not _NUMBER.fullmatch(number):
        raise FormError("err_number")
    month, year = _expiry(form, now)
    if not _CVC.fullmatch(_text(form, "cvc")):
        raise FormError("err_cvc")
    try:
        return gateway.tokenize(number, month, year)
    except CardRefused:
        raise FormError("err_number") from None


def stripe_card(gateway: Any, form: Mapping[str, Any], now: datetime) -> CardToken:
    """The payment method Stripe.js created, as Stripe holds it (blocking: a Stripe call).
    ``GatewayUnavailable`` when Stripe does not answer."""
    if not isinstance(gateway, StripeGateway):
        raise FormError("err_unavailable")
    pm = _text(form, "payment_method")
    if not _PM.fullmatch(pm):
        raise FormError("err_stripe")
    try:
        card = gateway.card_details(pm)
    except StripeError:
        raise FormError("err_stripe") from None
    if (card.exp_year, card.exp_month) < (now.year, now.month):
        raise FormError("err_expired")
    return card


def decline_message(decline: Decline | None) -> str:
    """The message key for a card refused at verification."""
    code = decline.decline_code if decline else None
    if code == "incorrect_cvc":
        return "err_incorrect_cvc"
    if code == "expired_card":
        return "err_expired_card"
    return "err_declined"
