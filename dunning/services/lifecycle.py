"""Changes that come from outside the retry path: a cancellation, an invoice paid elsewhere,
an account-updater event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from dunning.model import InvoiceStatus, SubscriptionStatus
from dunning.ports import Pipeline
from dunning.services import notify
from dunning.services.audit import audit_row, record, record_many
from dunning.services.settlement import Payment, settle
from dunning.services.subscription_state import move_subscription
from dunning.store import attempts, rows, status
from dunning.store.invoices import open_of_subscription
from dunning.store.tables import invoices, payment_methods, subscriptions
from dunning.store.uow import transaction


def cancel_subscription(
    c: Pipeline, subscription_id: str, now: datetime, *, reason: str = "cancelled"
) -> bool:
    """Cancel: its open invoices are void, so no retry, step or email follows. A charge already
    in flight cannot be called back: if it succeeds, it is an overpayment to refund."""
    with transaction(c.engine) as conn:
        sub = rows.get(conn, subscriptions, subscription_id)
        changed = move_subscription(conn, sub, SubscriptionStatus.cancelled, now, reason=reason)
        voided = status.move(
            conn,
            invoices,
            open_of_subscription(conn, subscription_id),
            InvoiceStatus.void,
            next_attempt_at=None,
            next_step_at=None,
            stop_reason="cancelled",
            updated_at=now,
        )
        _audit_voided(conn, sorted(voided), sub["customer_id"], now)
        for invoice_id in voided:
            notify.cancel_pending(conn, invoice_id=invoice_id)
        still_live = conn.execute(
            select(subscriptions.c.id).where(
                subscriptions.c.customer_id == sub["customer_id"],
                subscriptions.c.status != SubscriptionStatus.cancelled.value,
            )
        ).first()
        if still_live is None:
            # Nothing will be charged any more: a held expiry reminder would only confuse.
            notify.cancel_pending(conn, customer_id=sub["customer_id"], kinds=["card_expiring"])
    return changed


def _audit_voided(conn: Connection, ids: list[str], customer_id: str, now: datetime) -> None:
    stopped = "The subscription was cancelled."
    who = {"customer_id": customer_id, "reason": "cancelled"}
    moved = {"from": InvoiceStatus.open.value, "to": InvoiceStatus.void.value}
    record_many(
        conn,
        [audit_row("retry_stopped", now, invoice_id=i, message=stopped, **who) for i in ids]
        + [audit_row("invoice_status", now, invoice_id=i, **who, **moved) for i in ids],
    )


def invoice_paid_elsewhere(
    c: Pipeline, invoice_id: str, now: datetime, *, source: str = "external"
) -> str:
    """The gateway or the customer paid the invoice outside the retry path. Returns ``paid``,
    ``ignored`` (unknown or already settled) or ``deferred`` while a charge of ours is in
    flight: its answer decides whether this payment is the first or a second one."""
    with transaction(c.engine) as conn:
        if rows.find(conn, invoices, invoice_id, lock=True) is None:
            return "ignored"
        if attempts.in_flight(conn, [invoice_id]):
            return "deferred"
        return "paid" if settle(conn, c, [Payment(invoice_id, source)], now) else "ignored"


def card_auto_updated(
    c: Pipeline,
    payment_method_id: str,
    *,
    exp_month: int,
    exp_year: int,
    now: datetime,
    last4: str | None = None,
) -> bool:
    """New expiry (or number) for the same card: unblock it and retry what it stopped."""
    with transaction(c.engine) as conn:
        card = rows.find(conn, payment_methods, payment_method_id)
        last4 = last4 or (card["last4"] if card else None)
        if card is None or (card["exp_month"], card["exp_year"], card["last4"]) == (
            exp_month,
            exp_year,
            last4,
        ):
            return False
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.id == payment_method_id)
            .values(
                exp_month=exp_month,
                exp_year=exp_year,
                last4=last4,
                blocked_reason=None,
                updated_at=now,
            )
        )
        # An expiry reminder held until its morning is about the old expiry.
        notify.cancel_pending(conn, payment_method_id=payment_method_id, kinds=["card_expiring"])
        record(
            conn, "card_expiry_changed", now, customer_id=card["customer_id"],
            payment_method_id=payment_method_id, customer=card["customer_id"],
            payment_method=payment_method_id, last4=last4, exp_month=exp_month,
            exp_year=exp_year,
        )  # fmt: skip
        _retry_what_it_stopped(conn, card["customer_id"], payment_method_id, now)
    return True


def _retry_what_it_stopped(conn: Connection, customer_id: str, card_id: str, now: datetime) -> None:
    """Invoices whose retries stopped because this card needed new data are due again."""
    conn.execute(
        update(invoices)
        .where(
            invoices.c.customer_id == customer_id,
            invoices.c.status == InvoiceStatus.open.value,
            invoices.c.next_attempt_at.is_(None),
            invoices.c.stop_reason == "needs_new_card",
        )
        .values(
            next_attempt_at=now,
            next_attempt_reason="card_updated",
            stop_reason=None,
            retry_payment_method_id=card_id,
            updated_at=now,
        )
    )
