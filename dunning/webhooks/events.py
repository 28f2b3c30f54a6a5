"""Internal events that gateway webhooks become. Provider-neutral, immutable, aware datetimes.

``attempt_key`` is our own idempotency key, found in the provider's metadata when we made the
charge: the event is then matched to that attempt instead of being counted as a new failure.
Amounts are in minor units, currencies are upper-case ISO 4217 codes.

Every event checks on construction that the book can store what it carries (an amount within
a bigint, four digits of last4, a month 1-12, ids within their columns): a parser that meets
such a field raises :class:`MalformedEvent`, so the receiver refuses the delivery with a 400
instead of storing an event the worker could never apply.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypedDict

from dunning.errors import PermanentError
from dunning.policy.types import Decline
from dunning.webhooks.records import BillingHint, CustomerRecord, SubscriptionRecord


class MalformedEvent(PermanentError):
    """A webhook payload lacks a field or has one of the wrong type; ``reason`` names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed event: {reason}")
        self.reason = reason


class EventMeta(TypedDict):
    """The fields every event carries; parsers build it once and spread it into each event."""

    provider: str
    event_id: str
    occurred_at: datetime


# What the book's columns hold (dunning/store/tables): amounts are bigint minor units, ids 64
# characters, a card's expiry year is within the century the book accepts.
MAX_AMOUNT = 2**63 - 1
REF_CHARS = 64
KEY_CHARS = 128
_TEXT_CHARS = {"attempt_key": KEY_CHARS, "plan": 64, "network": 16, "email": 320, "name": 200}
_DECLINE_CHARS = {
    "decline_code": 64,
    "network_code": 8,
    "advice_code": 32,
    "network_advice_code": 4,
}
_MIN_EXP_YEAR, _MAX_EXP_YEAR = 2000, 2100


def _check_text(name: str, value: Any, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise MalformedEvent(f"{name}: longer than {limit} characters")


def _check_field(name: str, value: Any) -> None:
    """Refuse a value the book cannot store; ``name`` is the event field's dotted name."""
    last = name.rsplit(".", 1)[-1]
    if value is None:
        return
    if last == "ref" or last.endswith("_ref"):
        _check_text(name, value, REF_CHARS)
    elif last in _TEXT_CHARS:
        _check_text(name, value, _TEXT_CHARS[last])
    elif last == "amount" and not 0 <= value <= MAX_AMOUNT:
        raise MalformedEvent(f"{name}: {value} is outside 0..{MAX_AMOUNT}")
    elif last == "last4" and not (len(value) == 4 and value.isascii() and value.isdigit()):
        raise MalformedEvent(f"{name}: expected 4 digits")
    elif last == "exp_month" and not 1 <= value <= 12:
        raise MalformedEvent(f"{name}: {value} is not a month (1-12)")
    elif last == "exp_year" and not _MIN_EXP_YEAR <= value <= _MAX_EXP_YEAR:
        raise MalformedEvent(f"{name}: {value} is outside {_MIN_EXP_YEAR}..{_MAX_EXP_YEAR}")
    elif last == "decline":
        for code, limit in _DECLINE_CHARS.items():
            _check_text(f"{name}.{code}", getattr(value, code), limit)
    elif last in ("card", "customer"):
        _check_all(value, name)


def _check_all(obj: Any, prefix: str = "") -> None:
    for f in fields(obj):
        _check_field(f"{prefix}.{f.name}" if prefix else f.name, getattr(obj, f.name))


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    ref: str
    email: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class CardInfo:
    """What may be kept about a card: never its number or CVC."""

    ref: str | None
    network: str
    last4: str | None
    exp_month: int | None
    exp_year: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Base:
    provider: str
    event_id: str
    occurred_at: datetime

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")
        _check_all(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentFailed(_Base):
    customer_ref: str | None
    subscription_ref: str | None
    invoice_ref: str | None
    amount: int
    currency: str
    decline: Decline
    attempt_key: str | None = None
    customer: CustomerInfo | None = None
    card: CardInfo | None = None
    billing: BillingHint | None = None  # plan, interval, time zone a new subscription takes


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoicePaid(_Base):
    invoice_ref: str | None
    subscription_ref: str | None
    customer_ref: str | None
    amount: int
    currency: str
    attempt_key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionRequired(_Base):
    """The customer must act (3-D Secure / SCA) before the invoice can be paid."""

    invoice_ref: str | None
    subscription_ref: str | None
    customer_ref: str | None
    amount: int
    currency: str
    decline: Decline
    billing: BillingHint | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionChanged(_Base):
    subscription_ref: str
    customer_ref: str | None
    status: str
    cancelled: bool
    plan: str | None
    amount: int | None
    currency: str | None
    current_period_end: datetime | None
    # The whole subscription as the book would hold it (Stripe): creates it when new.
    record: SubscriptionRecord | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerChanged(_Base):
    """A customer created or changed at the gateway, as the book would hold it."""

    customer: CustomerRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class CardAutoUpdated(_Base):
    """An account updater gave the same credential new details (usually a new expiry)."""

    payment_method_ref: str
    customer_ref: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    network: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CardAttached(_Base):
    payment_method_ref: str
    customer_ref: str | None
    card: CardInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class CardDetached(_Base):
    payment_method_ref: str
    customer_ref: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CardConfirmed(_Base):
    """The customer confirmed a card with their bank (3-D Secure) on a card check the card
    page made: the card update is finished even if they never came back to the page."""

    setup_ref: str
    payment_method_ref: str
    customer_ref: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ignored(_Base):
    """A well-formed event the pipeline has no use for; stored, acknowledged, not acted on."""

    type: str


Event = (
    PaymentFailed
    | InvoicePaid
    | ActionRequired
    | SubscriptionChanged
    | CustomerChanged
    | CardAutoUpdated
    | CardAttached
    | CardDetached
    | CardConfirmed
    | Ignored
)
