"""Turn validated lines into table rows (pure: the clock and the stored state are passed in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dunning.imports.lines import CardLine, CustomerLine, InvoiceLine
from dunning.imports.state import Existing, default_card, keeps_card
from dunning.store.attempts import idempotency_key

ACTOR = "import"
# The reason of the attempt rows an import writes for the charges that failed before it.
IMPORTED = "imported"

# The keys of each kind of row, in the order the database reads them.
CUSTOMER_FIELDS = ("id", "email", "name", "locale", "timezone", "billing_emails",
                   "card_generation", "last_payment_at")  # fmt: skip
CARD_FIELDS = ("id", "customer_id", "gateway", "token", "network", "last4", "exp_month",
               "exp_year", "is_default", "status")  # fmt: skip
SUBSCRIPTION_FIELDS = ("id", "customer_id", "plan", "amount", "currency", "interval", "status",
                       "payment_method_id", "current_period_end", "last_payment_at",
                       "suspended_at", "cancelled_at")  # fmt: skip
INVOICE_FIELDS = ("id", "subscription_id", "customer_id", "amount", "currency", "status",
                  "attempt_count", "first_failed_at", "next_attempt_at", "next_step_at",
                  "last_decline_code")  # fmt: skip
ATTEMPT_FIELDS = ("idempotency_key", "invoice_id", "attempt_no", "customer_id",
                  "payment_method_id", "network", "amount", "currency", "initiator", "status",
                  "decline_code", "network_code", "advice_code", "network_advice_code", "reason",
                  "created_at", "resolved_at")  # fmt: skip
AUDIT_FIELDS = ("at", "kind", "invoice_id", "subscription_id", "customer_id",
                "payment_method_id", "actor", "reason", "message", "data")  # fmt: skip


@dataclass
class ChunkRows:
    """Everything one chunk writes, plus which customer each child row belongs to."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    audit: dict[str, dict[str, Any]] = field(default_factory=dict)  # by invoice id
    owner: dict[str, str] = field(default_factory=dict)  # card/sub/invoice id -> customer
    invoice_subscription: dict[str, str] = field(default_factory=dict)
    attempts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by invoice id


def build_rows(lines: list[CustomerLine], existing: Existing, now: datetime) -> ChunkRows:
    """The rows for ``lines``, without ``created_at``/``updated_at`` (the writer adds those).

    ``existing`` only matters where :func:`keeps_card` says so: rows built against an empty
    state are right for every other chunk, so they can be built before the lookup.
    """
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
    cards = _add_cards(out, c)
    cards_of = _add_subscriptions(out, c, existing, now)
    for inv in c.invoices:
        card_id = cards_of.get(inv.subscription)
        out.owner[inv.id] = c.id
        out.invoice_subscription[inv.id] = inv.subscription
        out.invoices.append(_invoice_row(c.id, inv, now))
        out.audit[inv.id] = _audit_row(c.id, inv, card_id, now)
        if card_id is not None:
            out.attempts[inv.id] = _attempt_rows(c.id, inv, card_id, cards.get(card_id), now)


def _add_cards(out: ChunkRows, c: CustomerLine) -> dict[str, CardLine]:
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
    return {pm.id: pm for pm in c.payment_methods}


def _add_subscriptions(
    out: ChunkRows, c: CustomerLine, existing: Existing, now: datetime
) -> dict[str, str | None]:
    """Add the subscription rows; return the card of each."""
    default = default_card(c)
    cards_of: dict[str, str | None] = {}
    for sub in c.subscriptions:
        out.owner[sub.id] = c.id
        card = sub.payment_method or default
        stored = existing.subscriptions.get(sub.id)
        if stored is not None and keeps_card(card, existing):
            card = stored[1]
        cards_of[sub.id] = card
        status = sub.status or "active"
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
    return cards_of


def _attempt_rows(
    customer: str, inv: InvoiceLine, card_id: str, card: CardLine | None, now: datetime
) -> list[dict[str, Any]]:
    """The failed charges the line reports, as the pipeline records its own: the first at
    ``first_failed_at``, the others at ``last_attempt_at`` (when the file gives no time, the
    latest it may have been: what the network limits count strictest), the last with the
    decline."""
    return imported_attempts(
        inv.id, customer, (card_id, card.network if card is not None else "unknown"),
        (inv.amount, inv.currency), inv.attempts, inv.decline,
        (inv.first_failed_at, inv.last_attempt_at or inv.first_failed_at), now,
    )  # fmt: skip


def imported_attempts(
    invoice_id: str,
    customer_id: str,
    card: tuple[str, str],
    money: tuple[int, str],
    attempts: int,
    decline: Any,
    times: tuple[datetime, datetime],
    now: datetime,
) -> list[dict[str, Any]]:
    """``attempts`` declined charges of an imported invoice as attempt rows: ``card`` is (id,
    network), ``money`` (amount, currency), ``times`` (the first's time, the later ones'); the
    last carries ``decline``."""
    out = []
    for n in range(1, attempts + 1):
        last = decline if n == attempts else None
        out.append(
            {
                "idempotency_key": idempotency_key(invoice_id, n),
                "invoice_id": invoice_id,
                "attempt_no": n,
                "customer_id": customer_id,
                "payment_method_id": card[0],
                "network": card[1],
                "amount": money[0],
                "currency": money[1],
                "initiator": "merchant",
                "status": "declined",
                "decline_code": last.decline_code if last else None,
                "network_code": last.network_code if last else None,
                "advice_code": last.advice_code if last else None,
                "network_advice_code": last.network_advice_code if last else None,
                "reason": IMPORTED,
                "created_at": times[0] if n == 1 else times[1],
                "resolved_at": now,
            }
        )
    return out


def _invoice_row(customer: str, inv: InvoiceLine, now: datetime) -> dict[str, Any]:
    # The retry is scheduled (or the retries stopped) before the commit, from the attempts
    # (dunning.services.imported); the steps are caught up from first_failed_at on the next scan.
    return {
        "id": inv.id,
        "subscription_id": inv.subscription,
        "customer_id": customer,
        "amount": inv.amount,
        "currency": inv.currency,
        "status": "open",
        "attempt_count": inv.attempts,
        "first_failed_at": inv.first_failed_at,
        "next_attempt_at": None,
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
            "last_attempt_at": (inv.last_attempt_at or inv.first_failed_at).isoformat(),
            "decline": inv.decline.model_dump() if inv.decline else None,
            "notified": inv.notified,
        },
    }
