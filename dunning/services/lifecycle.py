"""Changes that come from outside the retry path: a cancellation, an invoice paid elsewhere,
an account-updater event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from dunning.bootstrap import Container
from dunning.model import SubscriptionStatus
from dunning.services import notify, outcomes
from dunning.services.audit import record
from dunning.store import queries
from dunning.store.tables import invoices, payment_methods, subscriptions
from dunning.store.uow import transaction


def cancel_subscription(
    c: Container, subscription_id: str, now: datetime, *, reason: str = "cancelled"
) -> bool:
    """Cancel: no more retries and no more emails for its open invoices."""
    with transaction(c.engine) as conn:
        sub = queries.subscription(conn, subscription_id)
        changed = outcomes.set_subscription_status(
            conn, sub, SubscriptionStatus.cancelled, now, reason=reason
        )
        open_ids = list(
            conn.execute(
                select(invoices.c.id).where(
                    invoices.c.subscription_id == subscription_id, invoices.c.status == "open"
                )
            ).scalars()
        )
        for invoice_id in open_ids:
            conn.execute(
                update(invoices)
                .where(invoices.c.id == invoice_id)
                .values(
                    status="void",
                    next_attempt_at=None,
                    next_step_at=None,
                    stop_reason="cancelled",
                    updated_at=now,
                )
            )
            record(
                conn,
                "retry_stopped",
                now,
                invoice_id=invoice_id,
                customer_id=sub["customer_id"],
                reason="cancelled",
                message="The subscription was cancelled.",
            )
            record(
                conn,
                "invoice_status",
                now,
                invoice_id=invoice_id,
                customer_id=sub["customer_id"],
                reason="cancelled",
                **{"from": "open", "to": "void"},
            )
            notify.cancel_pending(conn, invoice_id=invoice_id)
        still_active = conn.execute(
            select(subscriptions.c.id).where(
                subscriptions.c.customer_id == sub["customer_id"],
                subscriptions.c.status != "cancelled",
            )
        ).first()
        if still_active is None:
            # Nothing will be charged any more: a held expiry reminder would only confuse.
            notify.cancel_pending(conn, customer_id=sub["customer_id"], kinds=["card_expiring"])
    return changed


def invoice_paid_elsewhere(
    c: Container, invoice_id: str, now: datetime, *, source: str = "external"
) -> bool:
    """The gateway or the customer paid the invoice outside the retry path."""
    with transaction(c.engine) as conn:
        if queries.find(conn, invoices, invoice_id) is None:
            return False
        return outcomes.settle_paid(conn, c, invoice_id, now, source=source)


def card_auto_updated(
    c: Container,
    payment_method_id: str,
    *,
    exp_month: int,
    exp_year: int,
    now: datetime,
    last4: str | None = None,
) -> bool:
    """New expiry (or number) for the same card: unblock it and retry what it stopped."""
    with transaction(c.engine) as conn:
        card = queries.find(conn, payment_methods, payment_method_id)
        if card is None:
            return False
        if (card["exp_month"], card["exp_year"], card["last4"]) == (
            exp_month,
            exp_year,
            last4 or card["last4"],
        ):
            return False
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.id == payment_method_id)
            .values(
                exp_month=exp_month,
                exp_year=exp_year,
                last4=last4 or card["last4"],
                blocked_reason=None,
                updated_at=now,
            )
        )
        # An expiry reminder held until its morning is about the old expiry.
        notify.cancel_pending(conn, payment_method_id=payment_method_id, kinds=["card_expiring"])
        record(
            conn,
            "card_expiry_changed",
            now,
            customer_id=card["customer_id"],
            payment_method_id=payment_method_id,
            customer=card["customer_id"],
            payment_method=payment_method_id,
            last4=last4 or card["last4"],
            exp_month=exp_month,
            exp_year=exp_year,
        )
        # Invoices that stopped because this card needed new data may be tried again.
        conn.execute(
            update(invoices)
            .where(
                invoices.c.customer_id == card["customer_id"],
                invoices.c.status == "open",
                invoices.c.next_attempt_at.is_(None),
                invoices.c.stop_reason == "needs_new_card",
            )
            .values(
                next_attempt_at=now,
                next_attempt_reason="card_updated",
                stop_reason=None,
                retry_payment_method_id=payment_method_id,
                updated_at=now,
            )
        )
    return True
