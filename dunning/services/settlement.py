"""Settling invoices: paid by a retry, a new card, an operator or elsewhere; the subscription
reactivated, the receipt queued, the merchant told. Money that arrives for an invoice that is
no longer owed is never dropped: it becomes an overpayment to refund."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from dunning.model import OWED, InvoiceStatus, NotificationStatus, SubscriptionStatus
from dunning.ports import Pipeline
from dunning.services import notify, outbound
from dunning.services.audit import audit_row, record_many
from dunning.services.case import Case, load_cases
from dunning.services.counters import count_overpayments
from dunning.services.invoice_emails import queue_invoice_emails
from dunning.services.subscription_state import move_subscriptions
from dunning.store import status
from dunning.store.tables import customers, invoices, notifications, overpayments, subscriptions
from dunning.store.upsert import insert_ignore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Payment:
    """Money received for an invoice: by one of our charges (``attempt_key``) or elsewhere."""

    invoice_id: str
    source: str  # merchant | customer (our charges), operator, external, stripe, quickpay ...
    attempt_key: str | None = None
    charge_id: str | None = None
    amount: int | None = None
    currency: str | None = None


def settle(conn: Connection, c: Pipeline, payments: Sequence[Payment], now: datetime) -> set[str]:
    """Mark owed invoices paid, set-based, in the caller's transaction; return the ids this call
    marked. A charge of ours that paid an invoice already paid, or no longer owed, is recorded
    as an overpayment; a report from elsewhere about a settled invoice changes nothing."""
    if not payments:
        return set()
    cases = load_cases(conn, [p.invoice_id for p in payments])
    first: dict[str, Payment] = {}
    extra: list[Payment] = []
    for p in payments:
        if cases[p.invoice_id].invoice["status"] in OWED and p.invoice_id not in first:
            first[p.invoice_id] = p
        else:
            extra.append(p)  # a second payment of one invoice, or one not owed
    moved = _mark_paid(conn, [cases[i] for i in first], first, now)
    extra += [p for i, p in first.items() if i not in moved]
    _overpaid(conn, [p for p in extra if p.attempt_key], now)
    settled = [cases[i] for i in first if i in moved]
    if settled:
        _after_paid(conn, c, settled, first, now)
    return moved


def _mark_paid(
    conn: Connection, cases: Sequence[Case], by: dict[str, Payment], now: datetime
) -> set[str]:
    moved = status.move(
        conn,
        invoices,
        [(case.id, case.invoice["status"]) for case in cases],
        InvoiceStatus.paid,
        paid_at=now,
        next_attempt_at=None,
        next_step_at=None,
        retry_claimed_until=None,
        step_claimed_until=None,
        updated_at=now,
    )
    record_many(
        conn,
        [
            audit_row(
                "invoice_status",
                now,
                invoice_id=case.id,
                customer_id=case.invoice["customer_id"],
                reason=by[case.id].source,
                **{"from": case.invoice["status"], "to": InvoiceStatus.paid.value},
            )
            for case in cases
            if case.id in moved
        ],
    )
    return moved


def _after_paid(
    conn: Connection, c: Pipeline, settled: Sequence[Case], by: dict[str, Payment], now: datetime
) -> None:
    """Reactivate, remember the payment, stop every nagging email, send the receipt."""
    subs = {case.subscription["id"]: case.subscription for case in settled}
    move_subscriptions(conn, list(subs.values()), SubscriptionStatus.active, now, reason="paid")
    conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id.in_(list(subs)))
        .values(last_payment_at=now, updated_at=now)
    )
    conn.execute(
        update(customers)
        .where(customers.c.id.in_({case.invoice["customer_id"] for case in settled}))
        .values(last_payment_at=now, updated_at=now)
    )
    conn.execute(
        update(notifications)
        .where(
            notifications.c.status == NotificationStatus.pending.value,
            notifications.c.invoice_id.in_([case.id for case in settled]),
        )
        .values(status=NotificationStatus.cancelled.value)
    )
    recovered = [case for case in settled if case.invoice["first_failed_at"] is not None]
    # A card saved to pay the invoice: its held confirmation becomes part of the receipt.
    new_cards = notify.take_card_confirmations(conn, [r.invoice["customer_id"] for r in recovered])
    queue_invoice_emails(
        conn, c, "payment_recovered", recovered, now, paid_at=now, new_cards=new_cards
    )
    outbound.invoice_events(
        conn,
        "invoice.recovered",
        [case.invoice for case in recovered],
        now,
        per_invoice={case.id: {"source": by[case.id].source} for case in recovered},
        status=InvoiceStatus.paid.value,
    )


def _overpaid(conn: Connection, extra: Sequence[Payment], now: datetime) -> None:
    """Record charges of ours that collected money not owed (once per charge)."""
    if not extra:
        return
    rows = _overpayment_rows(conn, extra, now)
    new = set(
        insert_ignore(
            conn, overpayments, rows, conflict=["attempt_key"], returning=overpayments.c.attempt_key
        )
    )
    fresh = [r for r in rows if r["attempt_key"] in new]
    record_many(
        conn,
        [
            audit_row(
                "overpayment",
                now,
                invoice_id=r["invoice_id"],
                customer_id=r["customer_id"],
                reason=r["reason"],
                message="A charge collected money not owed: refund it.",
                attempt_key=r["attempt_key"],
                amount=r["amount"],
                currency=r["currency"],
                invoice_status=r["invoice_status"],
            )
            for r in fresh
        ],
    )
    count_overpayments(conn, [(r["reason"], r["amount"], r["currency"]) for r in fresh])
    for r in fresh:
        log.warning(
            "charge %s collected %s %s for invoice %s, which is %s: refund it",
            r["attempt_key"], r["amount"], r["currency"], r["invoice_id"], r["invoice_status"],
        )  # fmt: skip


def _overpayment_rows(
    conn: Connection, extra: Sequence[Payment], now: datetime
) -> list[dict[str, Any]]:
    # Read again: the invoice may have been settled by this very call or a concurrent one.
    current = {
        r.id: r
        for r in conn.execute(
            select(invoices.c.id, invoices.c.status, invoices.c.customer_id).where(
                invoices.c.id.in_({p.invoice_id for p in extra})
            )
        )
    }
    return [
        {
            "invoice_id": p.invoice_id,
            "customer_id": current[p.invoice_id].customer_id,
            "attempt_key": p.attempt_key,
            "gateway_charge_id": p.charge_id,
            "amount": p.amount or 0,
            "currency": p.currency or "XXX",
            "reason": "paid_twice" if current[p.invoice_id].status == "paid" else "not_owed",
            "invoice_status": current[p.invoice_id].status,
            "found_at": now,
        }
        for p in extra
    ]
