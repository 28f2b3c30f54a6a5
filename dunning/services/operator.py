"""What an operator may do to one invoice, each audited with who did it and why.

The customer-facing promise behind these is "contact the business for a manual retry"
(docs/customer-promises.md #3): support can charge again now, hold dunning while a customer
sorts things out, record a payment made elsewhere, or give up on the invoice. Every action
re-reads the invoice in its transaction and refuses (``InvalidTransition``, nothing written)
what the lifecycle forbids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, update

from dunning.bootstrap import Container
from dunning.errors import InvalidTransition, PermanentError
from dunning.model import InvoiceStatus, check_transition
from dunning.policy.schedule import dunning_steps
from dunning.services import charging, notify, outbound, outcomes
from dunning.services.audit import record
from dunning.store import queries
from dunning.store.tables import invoices
from dunning.store.uow import transaction

ACTIONS = ("retry", "pause", "resume", "mark-paid", "write-off")
_REASON_COLUMN = 64  # audit_log.reason; the full text goes into the message


def _audit(
    conn: Connection, action: str, inv: RowMapping, now: datetime, *, reason: str, by: str
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


def _open(conn: Connection, invoice_id: str, action: str) -> RowMapping:
    inv = queries.invoice(conn, invoice_id, lock=True)
    if inv["status"] != InvoiceStatus.open:
        raise InvalidTransition(
            f"invoice {invoice_id} is {inv['status']}: only an open invoice can be {action}"
        )
    return inv


def _set(conn: Connection, invoice_id: str, now: datetime, **values: Any) -> None:
    conn.execute(
        update(invoices).where(invoices.c.id == invoice_id).values(updated_at=now, **values)
    )


def retry(c: Container, invoice_id: str, now: datetime, *, reason: str, by: str) -> None:
    """Charge again as soon as the retry producer runs; network limits still apply."""
    with transaction(c.engine) as conn:
        inv = _open(conn, invoice_id, "retried")
        if inv["paused"]:
            raise InvalidTransition(
                f"invoice {invoice_id} is paused: resume it first (dunning invoice resume)"
            )
        if charging.in_flight(conn, invoice_id):
            raise InvalidTransition(
                f"invoice {invoice_id} has a charge whose outcome is not known yet; "
                "wait for it to be looked up"
            )
        _set(
            conn,
            invoice_id,
            now,
            next_attempt_at=now,
            next_attempt_reason="operator_retry",
            stop_reason=None,
            retry_claimed_until=None,
        )
        _audit(conn, "retry", inv, now, reason=reason, by=by)


def pause(c: Container, invoice_id: str, now: datetime, *, reason: str, by: str) -> None:
    """Hold retries and reminder steps until :func:`resume`."""
    with transaction(c.engine) as conn:
        inv = _open(conn, invoice_id, "paused")
        if inv["paused"]:
            raise InvalidTransition(f"invoice {invoice_id} is already paused")
        _set(conn, invoice_id, now, paused=True, next_step_at=None, step_claimed_until=None)
        _audit(conn, "pause", inv, now, reason=reason, by=by)


def resume(c: Container, invoice_id: str, now: datetime, *, reason: str, by: str) -> None:
    """Lift a pause: the pending retry and the next step become due again at their times
    (at once when those passed during the pause)."""
    with transaction(c.engine) as conn:
        inv = _open(conn, invoice_id, "resumed")
        if not inv["paused"]:
            raise InvalidTransition(f"invoice {invoice_id} is not paused")
        _set(conn, invoice_id, now, paused=False, next_step_at=_next_step(conn, c, inv))
        _audit(conn, "resume", inv, now, reason=reason, by=by)


def _next_step(conn: Connection, c: Container, inv: RowMapping) -> datetime | None:
    if inv["first_failed_at"] is None:
        return None
    sub = queries.subscription(conn, inv["subscription_id"])
    cust = queries.customer(conn, inv["customer_id"])
    policy = c.policy.for_plan(sub["plan"], sub["interval"])
    steps = dunning_steps(inv["first_failed_at"], cust["timezone"] or "UTC", policy)
    index = int(inv["steps_done"])
    return steps[index].at if index < len(steps) else None


def mark_paid(c: Container, invoice_id: str, now: datetime, *, reason: str, by: str) -> None:
    """Record a payment made outside the pipeline: paid, reactivated, receipt sent."""
    with transaction(c.engine) as conn:
        inv = queries.invoice(conn, invoice_id, lock=True)
        check_transition(InvoiceStatus(inv["status"]), InvoiceStatus.paid)
        if not outcomes.settle_paid(conn, c, invoice_id, now, source="operator"):
            raise InvalidTransition(f"invoice {invoice_id} changed meanwhile; look again")
        _audit(conn, "mark-paid", inv, now, reason=reason, by=by)


def write_off(c: Container, invoice_id: str, now: datetime, *, reason: str, by: str) -> None:
    """Give up on the invoice: uncollectible, no more retries, reminders or emails."""
    with transaction(c.engine) as conn:
        inv = queries.invoice(conn, invoice_id, lock=True)
        check_transition(InvoiceStatus(inv["status"]), InvoiceStatus.uncollectible)
        _set(
            conn,
            invoice_id,
            now,
            status=InvoiceStatus.uncollectible.value,
            next_attempt_at=None,
            next_step_at=None,
            retry_claimed_until=None,
            step_claimed_until=None,
            stop_reason="written_off",
        )
        record(
            conn,
            "invoice_status",
            now,
            invoice_id=invoice_id,
            customer_id=inv["customer_id"],
            actor=by[:64],
            reason="written_off",
            **{"from": inv["status"], "to": InvoiceStatus.uncollectible.value},
        )
        notify.cancel_pending(conn, invoice_id=invoice_id)
        outbound.invoice_event(conn, "invoice.written_off", inv, now, status="uncollectible")
        _audit(conn, "write-off", inv, now, reason=reason, by=by)


def apply(
    c: Container, action: str, invoice_id: str, now: datetime, *, reason: str, by: str
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
