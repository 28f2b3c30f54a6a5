"""The nouns of dunning and the lifecycle transitions they may take.

The transitions of invoices, subscriptions and attempts are decided here and only here: every
status write goes through :func:`dunning.store.status.move`, a compare-and-set that takes only
the moves :func:`may_move` allows; :func:`check_transition` raises
:class:`~dunning.errors.InvalidTransition` before anything is written where a refusal must be
told (an operator's action).
"""

from __future__ import annotations

from enum import StrEnum

from dunning.errors import InvalidTransition


class SubscriptionStatus(StrEnum):
    active = "active"
    past_due = "past_due"
    suspended = "suspended"
    cancelled = "cancelled"


class InvoiceStatus(StrEnum):
    open = "open"
    paid = "paid"
    uncollectible = "uncollectible"
    void = "void"


# What a customer still owes: an open invoice, or one written off (a payment still settles it).
OWED = frozenset({InvoiceStatus.open, InvoiceStatus.uncollectible})


class CardStatus(StrEnum):
    active = "active"
    removed = "removed"
    purged = "purged"


class AttemptStatus(StrEnum):
    pending = "pending"  # row written, gateway called or about to be
    succeeded = "succeeded"
    declined = "declined"
    unknown = "unknown"  # the gateway did not answer: look it up by idempotency key
    not_charged = "not_charged"  # looked up: the charge never happened


class Initiator(StrEnum):
    merchant = "merchant"
    customer = "customer"


UNRESOLVED = frozenset({AttemptStatus.pending, AttemptStatus.unknown})

# The metadata ``source`` of the card checks the card page makes at the gateway (Stripe's
# SetupIntents): their webhooks finish a card update the customer did not come back to.
CARD_PAGE_SOURCE = "dunning_card_page"


class NotificationStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"
    cancelled = "cancelled"


class EventStatus(StrEnum):
    received = "received"
    processed = "processed"
    ignored = "ignored"
    failed = "failed"


SUBSCRIPTION_TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    SubscriptionStatus.active: frozenset(
        {SubscriptionStatus.past_due, SubscriptionStatus.cancelled, SubscriptionStatus.suspended}
    ),
    SubscriptionStatus.past_due: frozenset(
        {SubscriptionStatus.active, SubscriptionStatus.suspended, SubscriptionStatus.cancelled}
    ),
    SubscriptionStatus.suspended: frozenset(
        {SubscriptionStatus.active, SubscriptionStatus.cancelled}
    ),
    SubscriptionStatus.cancelled: frozenset(),
}

INVOICE_TRANSITIONS: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    InvoiceStatus.open: frozenset(
        {InvoiceStatus.paid, InvoiceStatus.uncollectible, InvoiceStatus.void}
    ),
    # A payment that arrives after write-off still settles the invoice.
    InvoiceStatus.uncollectible: frozenset({InvoiceStatus.paid, InvoiceStatus.void}),
    InvoiceStatus.paid: frozenset(),
    InvoiceStatus.void: frozenset(),
}

ATTEMPT_TRANSITIONS: dict[AttemptStatus, frozenset[AttemptStatus]] = {
    AttemptStatus.pending: frozenset(
        {
            AttemptStatus.succeeded,
            AttemptStatus.declined,
            AttemptStatus.unknown,
            AttemptStatus.not_charged,
        }
    ),
    AttemptStatus.unknown: frozenset(
        {AttemptStatus.succeeded, AttemptStatus.declined, AttemptStatus.not_charged}
    ),
    AttemptStatus.succeeded: frozenset(),
    AttemptStatus.declined: frozenset(),
    # A late answer: the look-up found nothing, then the gateway's answer arrived after all
    # (a slow call, a webhook). What the gateway says happened is what happened.
    AttemptStatus.not_charged: frozenset({AttemptStatus.succeeded, AttemptStatus.declined}),
}

_TABLES: dict[type[StrEnum], dict[object, frozenset[object]]] = {
    SubscriptionStatus: SUBSCRIPTION_TRANSITIONS,  # type: ignore[dict-item]
    InvoiceStatus: INVOICE_TRANSITIONS,  # type: ignore[dict-item]
    AttemptStatus: ATTEMPT_TRANSITIONS,  # type: ignore[dict-item]
}


def allowed_sources(target: StrEnum) -> frozenset[str]:
    """The states from which ``target`` may be reached (for guarded SQL ``WHERE status IN``)."""
    table = _TABLES[type(target)]
    return frozenset(str(src) for src, dests in table.items() if target in dests)


def may_move(current: str, target: StrEnum) -> bool:
    """Whether ``current -> target`` is allowed (staying put is not a move)."""
    return current in allowed_sources(target)


def check_transition(current: StrEnum, target: StrEnum) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> target`` is allowed."""
    table = _TABLES[type(target)]
    if target not in table[type(target)(current)]:
        raise InvalidTransition(f"{type(target).__name__} cannot go from {current!s} to {target!s}")
