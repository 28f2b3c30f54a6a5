"""Reading the new card from the submitted form.

Sandbox mode: the card number is tokenized at once and dropped; the CVC is checked for shape
and dropped (the sandbox has no use for it, and nothing here may store or log it). Stripe mode:
Stripe.js collected the card, so only a ``payment_method`` id arrives; its brand, last4 and
expiry are read from Stripe, never taken from the browser.

Every field is checked before the form is refused, so the page can mark each wrong input at
once. What the page shows again after an error (:class:`Entered`) is the expiry and the choice
to remove the old card, never the card number or the CVC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dunning.errors import PermanentError
from dunning.gateways.base import CardToken, Decline
from dunning.gateways.cards import luhn_ok
from dunning.gateways.sandbox import CardRefused, SandboxGateway
from dunning.gateways.stripe import StripeError, StripeGateway

_NUMBER = re.compile(r"[0-9][0-9 -]{10,30}[0-9]")
_CVC = re.compile(r"[0-9]{3,4}")
_PM = re.compile(r"pm_[A-Za-z0-9_]{1,100}")


class FormError(PermanentError):
    """The form cannot be used; ``key`` names the message above the form, ``fields`` the
    message of each input that is wrong (input name -> message key)."""

    def __init__(self, key: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(f"card form refused: {key} {sorted(fields or {})}")
        self.key = key
        self.fields = dict(fields or {})


@dataclass(frozen=True)
class Entered:
    """What the form shows again after an error: the expiry and the choice, as entered."""

    exp_month: str = ""
    exp_year: str = ""
    remove_old: bool = False

    @classmethod
    def card(cls, card: CardToken, remove_old: bool) -> Entered:
        """A card that got as far as the gateway: its expiry as the form shows it."""
        return cls(f"{card.exp_month:02d}", str(card.exp_year), remove_old)


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def entered(form: Mapping[str, Any]) -> Entered:
    """The fields that may be shown again, cut to their inputs' lengths."""
    return Entered(
        _text(form, "exp_month")[:2],
        _text(form, "exp_year")[:4],
        form.get("remove_old") is not None,
    )


def _month(text: str) -> int | None:
    month = int(text) if text.isdigit() and len(text) <= 2 else 0
    return month if 1 <= month <= 12 else None


def _year(text: str) -> int | None:
    if not text.isdigit() or len(text) not in (2, 4):
        return None
    year = int(text) + (2000 if len(text) == 2 else 0)
    return year if 2000 <= year <= 2100 else None


def expiry_errors(form: Mapping[str, Any], now: datetime) -> dict[str, str]:
    """The expiry inputs that are wrong, with their message keys; ``{}`` when both are right.
    An expired card is the year's fault, or the month's within the current year."""
    month, year = _month(_text(form, "exp_month")), _year(_text(form, "exp_year"))
    errors = {}
    if month is None:
        errors["exp_month"] = "err_exp_month"
    if year is None:
        errors["exp_year"] = "err_exp_year"
    if month is not None and year is not None and (year, month) < (now.year, now.month):
        errors["exp_year" if year < now.year else "exp_month"] = "err_expired"
    return errors


def sandbox_card(gateway: Any, form: Mapping[str, Any], now: datetime) -> CardToken:
    """Validate every field and tokenize the number with the sandbox gateway."""
    if not isinstance(gateway, SandboxGateway):
        raise FormError("err_unavailable")
    number = _text(form, "card_number")
    digits = "".join(c for c in number if c.isdigit())
    well_formed = _NUMBER.fullmatch(number) and luhn_ok(digits)
    errors = {} if well_formed else {"card_number": "err_number"}
    errors |= expiry_errors(form, now)
    if not _CVC.fullmatch(_text(form, "cvc")):
        errors["cvc"] = "err_cvc"
    month, year = _month(_text(form, "exp_month")), _year(_text(form, "exp_year"))
    if errors or month is None or year is None:
        raise FormError("errors_summary", errors)
    try:
        return gateway.tokenize(number, month, year)
    except CardRefused:
        raise FormError("errors_summary", {"card_number": "err_number"}) from None


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
