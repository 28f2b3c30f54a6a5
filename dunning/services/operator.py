"""What an operator may do to one invoice, each audited with who did it and why.

The customer-facing promise behind these is "contact the business for a manual retry"
(docs/customer-promises.md #3): support can charge again now, hold dunning while a customer
sorts things out, record a payment made elsewhere, or give up on the invoice. Every action
re-reads the invoice in its transaction and refuses (``InvalidTransition``, nothing written)
what the lifecycle forbids or what a charge in flight makes unsafe.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from dunning.errors import InvalidTransition, PermanentError
from dunning.model import InvoiceStatus, SubscriptionStatus, check_transition
from dunning.policy.schedule import dunning_steps
from dunning.ports import Pipeline
from dunning.services import notify, outbound
from dunning.services.audit import record
from dunning.services.case import Case, load_cases
from dunning.services.settlement import Payment, settle
from dunning.store import attempts, invoices, rows, status
from dunning.store.tables import invoices as invoice_table
from dunning.store.uow import after_commit, transaction

ACTIONS = ("retry", "pause", "resume", "mark-paid", "write-off")
_REASON_COLUMN = 64  # audit_log.reason; the full text goes into the message


def _audit(
    conn: Connection, action: str, inv: Mapping[Any, Any], now: datetime, *, reason: str, by: str
) -> None:
    record(
        conn,
        "operator_" + action.replace("-", "_"),
        now,
        invoice_id=inv["id"],
        subscription_id=inv["subscription_id"],
        customer_id=inv["customer_id"],
        actor=by[:64],
        reason=reason[:_REASON_COLUMN],
        message=reason,
        status_before=inv["status"],
    )


def _case(conn: Connection, invoice_id: str) -> Case:
    """The invoice's case, its row locked for the rest of the transaction."""
    rows.get(conn, invoice_table, invoice_id, lock=True)
    return load_cases(conn, [invoice_id])[invoice_id]


def _open(conn: Connection, invoice_id: str, action: str) -> Case:
    case = _case(conn, invoice_id)
    current = case.invoice["status"]
    if current != InvoiceStatus.open:
        raise InvalidTransition(
            f"invoice {invoice_id} is {current}: only an open invoice can be {action}"
        )
    return case


def _no_charge_in_flight(conn: Connection, invoice_id: str, what: str) -> None:
    busy = attempts.in_flight(conn, [invoice_id])
    if busy:
        raise InvalidTransition(
            f"invoice {invoice_id} has a charge whose outcome is not known yet "
            f"({busy[invoice_id]}); {what} once it has been looked up"
        )


def retry(c: Pipeline, invoice_id: str, now: datetime, *, reason: str, by: str) -> None:
    """Queue a charge now; it goes through the same checks and network limits as any retry."""
    with transaction(c.engine) as conn:
        case = _open(conn, invoice_id, "retried")
        inv = case.invoice
        if case.subscription["status"] == SubscriptionStatus.cancelled:
            raise InvalidTransition(
                f"invoice {invoice_id} belongs to a cancelled subscription: it is not charged"
            )
        if inv["paused"]:
            raise InvalidTransition(
                f"invoice {invoice_id} is paused: resume it first (dunning invoice resume)"
            )
        if case.customer["dunning_paused"]:
            raise InvalidTransition(
                f"invoice {invoice_id} belongs to customer {inv['customer_id']}, who is paused: "
                "resume the customer first"
            )
        _no_charge_in_flight(conn, invoice_id, "retry it")
        # Enqueued at once, and then claimed as the producer claims: it does not enqueue it
        # again while the message is on its way. With nothing to send it, the producer does.
        lease = (
            now + timedelta(seconds=c.settings.timing.claim_lease_s) if c.dispatcher.sends else None
        )
        invoices.set_values(
            conn, invoice_id, now=now, next_attempt_at=now, next_attempt_reason="operator_retry",
            stop_reason=None, retry_claimed_until=lease,
        )  # fmt: skip
        _audit(conn, "retry", inv, now, reason=reason, by=by)
        item = (invoice_id, int(inv["attempt_count"]) + 1)
        after_commit(conn, lambda: c.dispatcher.retry_charges([item]))


def pause(c: Pipeline, invoice_id: str, now: datetime, *, reason: str, by: str) -> None:
    """Hold retries and reminder steps until :func:`resume`."""
    with transaction(c.engine) as conn:
        inv = _open(conn, invoice_id, "paused").invoice
        if inv["paused"]:
            raise InvalidTransition(f"invoice {invoice_id} is already paused")
        invoices.set_values(
            conn, invoice_id, now=now, paused=True, next_step_at=None, step_claimed_until=None
        )
        _audit(conn, "pause", inv, now, reason=reason, by=by)


def resume(c: Pipeline, invoice_id: str, now: datetime, *, reason: str, by: str) -> None:
    """Lift a pause: the pending retry and the next step become due again at their times
    (at once when those passed during the pause)."""
    with transaction(c.engine) as conn:
        case = _open(conn, invoice_id, "resumed")
        inv = case.invoice
        if not inv["paused"]:
            raise InvalidTransition(f"invoice {invoice_id} is not paused")
        invoices.set_values(
            conn, invoice_id, now=now, paused=False, next_step_at=_next_step(c, case)
        )
        _audit(conn, "resume", inv, now, reason=reason, by=by)


def _next_step(c: Pipeline, case: Case) -> datetime | None:
    inv = case.invoice
    if inv["first_failed_at"] is None:
        return None
    steps = dunning_steps(inv["first_failed_at"], case.timezone, case.policy(c.policy))
    index = int(inv["steps_done"])
    return steps[index].at if index < len(steps) else None


def mark_paid(c: Pipeline, invoice_id: str, now: datetime, *, reason: str, by: str) -> None:
    """Record a payment made outside the pipeline: paid, reactivated, receipt sent."""
    with transaction(c.engine) as conn:
        inv = _case(conn, invoice_id).invoice
        if inv["status"] == InvoiceStatus.paid:
            raise InvalidTransition(f"invoice {invoice_id} is already paid; nothing to record")
        check_transition(InvoiceStatus(inv["status"]), InvoiceStatus.paid)
        _no_charge_in_flight(conn, invoice_id, "record the payment")
        if not settle(conn, c, [Payment(invoice_id, "operator")], now):
            raise InvalidTransition(f"invoice {invoice_id} changed meanwhile; look again")
        _audit(conn, "mark-paid", inv, now, reason=reason, by=by)


def write_off(c: Pipeline, invoice_id: str, now: datetime, *, reason: str, by: str) -> None:
    """Give up on the invoice: uncollectible, no more retries, reminders or emails."""
    with transaction(c.engine) as conn:
        inv = _case(conn, invoice_id).invoice
        check_transition(InvoiceStatus(inv["status"]), InvoiceStatus.uncollectible)
        status.move(
            conn, invoice_table, [(inv["id"], inv["status"])], InvoiceStatus.uncollectible,
            next_attempt_at=None, next_step_at=None, retry_claimed_until=None,
            step_claimed_until=None, stop_reason="written_off", updated_at=now,
        )  # fmt: skip
        record(
            conn, "invoice_status", now, invoice_id=invoice_id, customer_id=inv["customer_id"],
            actor=by[:64], reason="written_off",
            **{"from": inv["status"], "to": InvoiceStatus.uncollectible.value},
        )  # fmt: skip
        notify.cancel_pending(conn, invoice_id=invoice_id)
        outbound.invoice_event(conn, "invoice.written_off", inv, now, status="uncollectible")
        _audit(conn, "write-off", inv, now, reason=reason, by=by)


def apply(
    c: Pipeline, action: str, invoice_id: str, now: datetime, *, reason: str, by: str
) -> None:
    """Run one of :data:`ACTIONS` by name."""
    handlers = {
        "retry": retry,
        "pause": pause,
        "resume": resume,
        "mark-paid": mark_paid,
        "write-off": write_off,
    }
    if not reason.strip():
        raise PermanentError("say why: the reason must not be empty")
    handlers[action](c, invoice_id, now, reason=reason.strip(), by=by)
