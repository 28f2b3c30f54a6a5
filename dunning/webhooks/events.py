"""Internal events that gateway webhooks become. Provider-neutral, immutable, aware datetimes.

``attempt_key`` is our own idempotency key, found in the provider's metadata when we made the
charge: the event is then matched to that attempt instead of being counted as a new failure.
Amounts are in minor units, currencies are upper-case ISO 4217 codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from dunning.errors import PermanentError
from dunning.policy.types import Decline


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
class Ignored(_Base):
    """A well-formed event the pipeline has no use for; stored, acknowledged, not acted on."""

    type: str


Event = (
    PaymentFailed
    | InvoicePaid
    | ActionRequired
    | SubscriptionChanged
    | CardAutoUpdated
    | CardAttached
    | CardDetached
    | Ignored
)
