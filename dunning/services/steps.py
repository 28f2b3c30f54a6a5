"""The lifecycle steps of an open invoice: reminders, the final notice, suspension."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, RowMapping, update

from dunning.bootstrap import Container
from dunning.model import SubscriptionStatus
from dunning.policy.schedule import dunning_steps
from dunning.services import outcomes
from dunning.services.audit import record
from dunning.store import queries
from dunning.store.tables import invoices
from dunning.store.uow import transaction


def run_due_steps(c: Container, invoice_id: str, now: datetime) -> list[str]:
    """Carry out every step of the invoice that is due and not yet done; safe to run twice."""
    done: list[str] = []
    with transaction(c.engine) as conn:
        inv = queries.find(conn, invoices, invoice_id)
        if inv is None or inv["status"] != "open" or inv["first_failed_at"] is None:
            return done
        sub = queries.subscription(conn, inv["subscription_id"])
        cust = queries.customer(conn, inv["customer_id"])
        policy = c.policy.for_plan(sub["plan"], sub["interval"])
        steps = dunning_steps(inv["first_failed_at"], cust["timezone"] or "UTC", policy)
        index = int(inv["steps_done"])
        paused = bool(inv["paused"])
        while index < len(steps) and steps[index].at <= now and not paused:
            step = steps[index]
            if sub["status"] == "cancelled":
                break
            if step.kind == "suspend":
                _suspend(conn, c, inv, now, end_action=policy.end_action)
            elif step.kind == "payment_retry_failed":
                # The reminder says a retry was declined again: without one it would not be true
                # (a hard decline gets none; a long Mastercard delay puts the first one later).
                if _retry_declined(conn, invoice_id):
                    outcomes.queue_invoice_email(
                        conn, c, step.kind, invoice_id, now, dedup_suffix=str(index)
                    )
            elif step.kind == "final_notice":
                outcomes.queue_invoice_email(conn, c, step.kind, invoice_id, now)
            done.append(step.kind)
            index += 1
        following = steps[index].at if index < len(steps) and not paused else None
        conn.execute(
            update(invoices)
            .where(invoices.c.id == invoice_id, invoices.c.steps_done == inv["steps_done"])
            .values(
                steps_done=index, next_step_at=following, step_claimed_until=None, updated_at=now
            )
        )
    return done


def _retry_declined(conn: Connection, invoice_id: str) -> bool:
    """Whether any attempt after the original failed charge was declined."""
    return any(a.status == "declined" for a in queries.invoice_attempts(conn, invoice_id)[1:])


def _suspend(
    conn: Connection, c: Container, inv: RowMapping, now: datetime, *, end_action: str
) -> None:
    sub = queries.subscription(conn, inv["subscription_id"])
    if inv["next_attempt_at"] is not None or inv["stop_reason"] is None:
        outcomes.stop_retries(conn, inv, "window_over", "The retry window is over.", now)
    outcomes.set_subscription_status(
        conn, sub, SubscriptionStatus.suspended, now, reason="window_over"
    )
    if end_action == "uncollectible":
        conn.execute(
            update(invoices)
            .where(invoices.c.id == inv["id"])
            .values(status="uncollectible", updated_at=now)
        )
        record(
            conn,
            "invoice_status",
            now,
            invoice_id=inv["id"],
            customer_id=inv["customer_id"],
            reason="window_over",
            **{"from": "open", "to": "uncollectible"},
        )
    outcomes.queue_invoice_email(conn, c, "subscription_suspended", inv["id"], now)
