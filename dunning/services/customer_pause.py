"""An operator's hold on a whole customer: none of its invoices is charged and no reminder step
runs while it lasts, including invoices that open during the pause.

The hold is ``customers.dunning_paused``. The charge compare-and-set
(:func:`dunning.store.invoices.claim_charges`) reads it under a lock that this pause waits
for, so once :func:`pause_customer` returns, no charge of the customer is taken. Retries and
steps whose time passed during the pause are due at once after :func:`resume_customer`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from dunning.errors import InvalidTransition, PermanentError
from dunning.ports import Pipeline
from dunning.services.audit import audit_row, record_many
from dunning.store import invoices, rows
from dunning.store.tables import customers
from dunning.store.uow import transaction

CUSTOMER_ACTIONS = ("pause-customer", "resume-customer")
_REASON_COLUMN = 64  # audit_log.reason; the full text goes into the message


def _hold(
    c: Pipeline, customer_id: str, paused: bool, now: datetime, *, reason: str, by: str
) -> None:
    """Write the hold, audited on each invoice the customer owes (or on the customer).

    The audit rows (which key-share lock the invoices) come before the customer's row lock,
    the order every other writer takes them in (an invoice, then its customer), so a pause
    never deadlocks with an operator action or a payment on the same customer.
    """
    with transaction(c.engine) as conn:
        rows.get(conn, customers, customer_id)  # NotFound names it
        kind = "operator_pause_customer" if paused else "operator_resume_customer"
        owed: list[str | None] = [*invoices.owed_by(conn, customer_id)] or [None]
        audit = {"customer_id": customer_id, "actor": by[:64], "message": reason}
        audit["reason"] = reason[:_REASON_COLUMN]
        record_many(conn, [audit_row(kind, now, invoice_id=i, **audit) for i in owed])
        if rows.get(conn, customers, customer_id, lock=True)["dunning_paused"] == paused:
            state = "already paused" if paused else "not paused"
            raise InvalidTransition(f"customer {customer_id} is {state}")
        conn.execute(
            update(customers)
            .where(customers.c.id == customer_id)
            .values(dunning_paused=paused, updated_at=now)
        )


def pause_customer(c: Pipeline, customer_id: str, now: datetime, *, reason: str, by: str) -> None:
    """Hold every charge and reminder of the customer until :func:`resume_customer`."""
    _hold(c, customer_id, True, now, reason=reason, by=by)


def resume_customer(c: Pipeline, customer_id: str, now: datetime, *, reason: str, by: str) -> None:
    """Lift the customer's hold; an invoice paused on its own stays paused."""
    _hold(c, customer_id, False, now, reason=reason, by=by)


def apply_customer(
    c: Pipeline, action: str, customer_id: str, now: datetime, *, reason: str, by: str
) -> None:
    """Run one of :data:`CUSTOMER_ACTIONS` by name."""
    if not reason.strip():
        raise PermanentError("say why: the reason must not be empty")
    handler = pause_customer if action == "pause-customer" else resume_customer
    handler(c, customer_id, now, reason=reason.strip(), by=by)
