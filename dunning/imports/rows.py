"""Turn validated lines into table rows (pure: the clock and the database state are passed in).

What already exists decides a few things: a card or subscription id that belongs to another
customer refuses the line, and a subscription is not moved onto a card the pipeline has removed
or purged (it keeps its current card).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dunning.imports.checks import LineError
from dunning.imports.lines import CustomerLine, InvoiceLine

ACTOR = "import"


@dataclass(frozen=True)
class Existing:
    """The rows of a chunk that are already stored, keyed by id."""

    customers: frozenset[str] = frozenset()
    cards: dict[str, tuple[str, str]] = field(default_factory=dict)  # (customer, status)
    subscriptions: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # (cus, card)
    invoices: dict[str, str] = field(default_factory=dict)  # customer
    default_cards: dict[str, str] = field(default_factory=dict)  # customer -> its default card


def ownership_errors(lineno: int, c: CustomerLine, existing: Existing) -> list[LineError]:
    """Ids this line names that are stored under another customer."""
    taken = "already belongs to another customer"
    errors = []
    for i, pm in enumerate(c.payment_methods):
        if pm.id in existing.cards and existing.cards[pm.id][0] != c.id:
            errors.append(LineError(lineno, f"payment_methods.{i}.id", taken))
    for i, sub in enumerate(c.subscriptions):
        if sub.id in existing.subscriptions and existing.subscriptions[sub.id][0] != c.id:
            errors.append(LineError(lineno, f"subscriptions.{i}.id", taken))
    for i, inv in enumerate(c.invoices):
        if inv.id in existing.invoices and existing.invoices[inv.id] != c.id:
            errors.append(LineError(lineno, f"invoices.{i}.id", taken))
    return errors


@dataclass
class ChunkRows:
    """Everything one chunk writes, plus which customer each child row belongs to."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    audit: dict[str, dict[str, Any]] = field(default_factory=dict)  # by invoice id
    # Stored default cards to unset first: another card of the customer becomes the default.
    old_defaults: list[str] = field(default_factory=list)
    explicit_status: dict[str, str] = field(default_factory=dict)  # stored sub -> status
    owner: dict[str, str] = field(default_factory=dict)  # card/sub/invoice id -> customer
    invoice_subscription: dict[str, str] = field(default_factory=dict)


def build_rows(lines: list[CustomerLine], existing: Existing, now: datetime) -> ChunkRows:
    """The rows for ``lines``, without ``created_at``/``updated_at`` (the writer adds those)."""
    out = ChunkRows()
    for c in lines:
        _add_customer(out, c, existing, now)
    return out


def _add_customer(out: ChunkRows, c: CustomerLine, existing: Existing, now: datetime) -> None:
    paid = [s.last_payment_at for s in c.subscriptions if s.last_payment_at is not None]
    out.customers.append(
        {
            "id": c.id,
            "email": c.email,
            "name": c.name,
            "locale": c.locale,
            "timezone": c.timezone,
            "billing_emails": list(c.billing_emails),
            "card_generation": 0,
            "last_payment_at": max(paid, default=None),
        }
    )
    default = next((pm.id for pm in c.payment_methods if pm.default), None)
    stored_default = existing.default_cards.get(c.id)
    if (
        default is not None
        and stored_default not in (None, default)
        and existing.cards.get(default, (c.id, "active"))[1] == "active"
    ):
        out.old_defaults.append(stored_default)
    for pm in c.payment_methods:
        out.owner[pm.id] = c.id
        out.cards.append(
            {
                "id": pm.id,
                "customer_id": c.id,
                "gateway": pm.gateway,
                "token": pm.token,
                "network": pm.network,
                "last4": pm.last4,
                "exp_month": pm.exp_month,
                "exp_year": pm.exp_year,
                "is_default": pm.default,
                "status": "active",
            }
        )
    in_dunning = {inv.subscription for inv in c.invoices}
    cards_of: dict[str, str | None] = {}
    for sub in c.subscriptions:
        out.owner[sub.id] = c.id
        card = sub.payment_method or default
        stored = existing.subscriptions.get(sub.id)
        if stored is not None and card in existing.cards and existing.cards[card][1] != "active":
            card = stored[1]
        cards_of[sub.id] = card
        status = sub.status or "active"
        # An imported open invoice makes an active subscription past_due; that is done after
        # the invoice is written, so a re-import does not undo a recovery.
        if stored is not None and sub.status and not (status == "active" and sub.id in in_dunning):
            out.explicit_status[sub.id] = status
        out.subscriptions.append(
            {
                "id": sub.id,
                "customer_id": c.id,
                "plan": sub.plan,
                "amount": sub.amount,
                "currency": sub.currency,
                "interval": sub.interval,
                "status": status,
                "payment_method_id": card,
                "current_period_end": sub.current_period_end,
                "last_payment_at": sub.last_payment_at,
                "suspended_at": now if status == "suspended" else None,
                "cancelled_at": now if status == "cancelled" else None,
            }
        )
    for inv in c.invoices:
        out.owner[inv.id] = c.id
        out.invoice_subscription[inv.id] = inv.subscription
        out.invoices.append(_invoice_row(c.id, inv, now))
        out.audit[inv.id] = _audit_row(c.id, inv, cards_of.get(inv.subscription), now)


def _invoice_row(customer: str, inv: InvoiceLine, now: datetime) -> dict[str, Any]:
    # The pipeline re-derives the real schedule from the policy the first time it looks at
    # an invoice due now.
    return {
        "id": inv.id,
        "subscription_id": inv.subscription,
        "customer_id": customer,
        "amount": inv.amount,
        "currency": inv.currency,
        "status": "open",
        "attempt_count": inv.attempts,
        "first_failed_at": inv.first_failed_at,
        "next_attempt_at": now,
        "next_step_at": now,
        "last_decline_code": inv.decline.decline_code if inv.decline else None,
    }


def _audit_row(customer: str, inv: InvoiceLine, card: str | None, now: datetime) -> dict[str, Any]:
    return {
        "at": now,
        "kind": "invoice_imported",
        "invoice_id": inv.id,
        "subscription_id": inv.subscription,
        "customer_id": customer,
        "payment_method_id": card,
        "actor": ACTOR,
        "reason": inv.decline.decline_code if inv.decline else None,
        "message": f"imported open after {inv.attempts} failed attempt(s)",
        "data": {
            "amount": inv.amount,
            "currency": inv.currency,
            "attempts": inv.attempts,
            "first_failed_at": inv.first_failed_at.isoformat(),
            "decline": inv.decline.model_dump() if inv.decline else None,
        },
    }
