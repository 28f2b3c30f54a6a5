"""The lifecycle steps of an open invoice: reminders, the final notice, suspension.

Steps that fall due together (an old invoice imported, a scheduler that was stopped) are
caught up as one: only the latest is carried out, so a customer never gets a reminder or a
final notice for a day already past; the ones passed over are audited as skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, update

from dunning.model import InvoiceStatus, SubscriptionStatus
from dunning.policy.schedule import STEP_FINAL_NOTICE, STEP_REMINDER, STEP_SUSPEND, dunning_steps
from dunning.policy.types import Step
from dunning.ports import Pipeline
from dunning.services.audit import record
from dunning.services.case import Case, load_cases
from dunning.services.invoice_emails import queue_invoice_emails
from dunning.services.retry_schedule import stop_retries
from dunning.services.subscription_state import move_subscription
from dunning.store import attempts, status
from dunning.store.tables import invoices
from dunning.store.uow import transaction


def run_due_steps(c: Pipeline, invoice_id: str, now: datetime) -> list[str]:
    """Carry out the invoice's due step (the latest of those due); safe to run twice. Returns
    the kinds of the steps carried out."""
    with transaction(c.engine) as conn:
        case = load_cases(conn, [invoice_id], required=False).get(invoice_id)
        inv = case.invoice if case else None
        if case is None or inv is None or inv["status"] != "open" or inv["first_failed_at"] is None:
            return []
        if case.customer["dunning_paused"]:
            return []  # held with the customer: due again, as it stands, once resumed
        steps = dunning_steps(inv["first_failed_at"], case.timezone, case.policy(c.policy))
        index = int(inv["steps_done"])
        due = [s for s in steps[index:] if s.at <= now]
        done: list[str] = []
        if (
            due
            and not inv["paused"]
            and case.subscription["status"] != SubscriptionStatus.cancelled
        ):
            done = _carry_out(conn, c, case, due, now)
            index += len(due)
        following = steps[index].at if index < len(steps) and not inv["paused"] else None
        conn.execute(
            update(invoices)
            .where(invoices.c.id == invoice_id, invoices.c.steps_done == inv["steps_done"])
            .values(
                steps_done=index, next_step_at=following, step_claimed_until=None, updated_at=now
            )
        )
    return done


def _carry_out(
    conn: Connection, c: Pipeline, case: Case, due: Sequence[Step], now: datetime
) -> list[str]:
    """Carry out the latest due step; audit the earlier ones as caught up."""
    latest = next((s for s in due if s.kind == STEP_SUSPEND), due[-1])
    for step in due:
        if step is not latest:
            message = f"{step.kind} of {step.at.isoformat()} passed over: {latest.kind} is due too"
            record(
                conn, "step_skipped", now, invoice_id=case.id,
                customer_id=case.invoice["customer_id"], reason="caught_up", message=message,
                step=step.kind,
            )  # fmt: skip
    if latest.kind == STEP_SUSPEND:
        _suspend(conn, c, case, now)
    elif latest.kind == STEP_REMINDER:
        # The reminder says a retry was declined again: without one it would not be true
        # (a hard decline gets none; a long Mastercard delay puts the first one later).
        if any(a.status == "declined" for a in attempts.for_invoice(conn, case.id)[1:]):
            queue_invoice_emails(conn, c, latest.kind, [case], now, dedup_suffix=str(latest.index))
    elif latest.kind == STEP_FINAL_NOTICE:
        queue_invoice_emails(conn, c, latest.kind, [case], now)
    return [latest.kind]


def _suspend(conn: Connection, c: Pipeline, case: Case, now: datetime) -> None:
    inv = case.invoice
    if inv["next_attempt_at"] is not None or inv["stop_reason"] is None:
        stop_retries(conn, inv, "window_over", "The retry window is over.", now)
    move_subscription(
        conn, case.subscription, SubscriptionStatus.suspended, now, reason="window_over"
    )
    if case.policy(c.policy).end_action == "uncollectible":
        moved = status.move(
            conn,
            invoices,
            [(inv["id"], inv["status"])],
            InvoiceStatus.uncollectible,
            updated_at=now,
        )
        if moved:
            record(
                conn, "invoice_status", now, invoice_id=inv["id"], customer_id=inv["customer_id"],
                reason="window_over", **{"from": inv["status"], "to": "uncollectible"},
            )  # fmt: skip
    queue_invoice_emails(conn, c, "subscription_suspended", [case], now)
