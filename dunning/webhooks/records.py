"""What a gateway account says about a customer, a card, a subscription or an invoice, as the
book would hold it (read by :mod:`dunning.webhooks.stripe_objects`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dunning.policy.types import Decline


@dataclass(frozen=True, slots=True)
class CardRecord:
    ref: str  # the PaymentMethod id, also the token charges use
    network: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    ref: str
    email: str | None
    name: str
    preferred_locales: tuple[str, ...]  # as Stripe has them; see pick_locale
    timezone: str
    default_card: CardRecord | None  # when the default payment method was expanded
    default_card_ref: str | None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    ref: str
    customer_ref: str
    plan: str
    amount: int
    currency: str
    interval: str  # month | year
    status: str  # the book's: active | past_due | suspended | cancelled
    card: CardRecord | None  # its own default payment method, when expanded
    card_ref: str | None
    current_period_end: datetime | None


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    ref: str
    customer_ref: str
    subscription_ref: str | None
    amount: int
    currency: str
    status: str  # Stripe's: draft | open | paid | uncollectible | void
    attempts: int
    first_failed_at: datetime
    decline: Decline | None


@dataclass(frozen=True, slots=True)
class BillingHint:
    """What an invoice says of the subscription and the customer it bills: the plan (price id)
    and interval of its subscription line, the time zone of the customer's address country."""

    plan: str | None
    interval: str | None  # month | year
    timezone: str | None
