"""Settling charges whose outcome is unknown (no answer, a crash mid-call) by looking them up
at the gateway under their idempotency key; never by charging again blind.

An attempt is looked up only once its stamp is ``unknown_after_s`` old: by then its call has
ended (the gateway bounds the whole call well below that). Found, its answer is applied;
not found, it is marked ``not_charged`` and the invoice is retried at once under a new key,
unless the attempt was stamped again meanwhile (then the look-up proves nothing).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Connection, RowMapping, update

from dunning.model import UNRESOLVED, AttemptStatus, InvoiceStatus
from dunning.ports import Pipeline
from dunning.services.attempt_results import apply_answers
from dunning.services.audit import record
from dunning.services.case import load_case
from dunning.services.gateway_calls import gateway_refs
from dunning.store import attempts, rows, status
from dunning.store.tables import invoices, payment_attempts
from dunning.store.uow import after_commit, transaction

log = logging.getLogger(__name__)


def resolve_attempt(c: Pipeline, key: str, now: datetime) -> str:
    """Look one attempt up and settle it. Returns ``skipped``, ``not_charged`` or the status
    the gateway reported."""
    with c.engine.connect() as conn:
        att = attempts.by_key(conn, key)
    if att is None or att["status"] not in UNRESOLVED:
        return "skipped"
    if att["created_at"] > now - timedelta(seconds=c.settings.timing.unknown_after_s):
        return "skipped"  # stamped since it was found unanswered: it may still be on its way
    with c.engine.connect() as conn:
        case = load_case(conn, att["invoice_id"])
    customer_ref, invoice_ref = gateway_refs(c.gateway.name, case.customer, case.invoice)
    found = c.gateway.lookup(key, customer_id=customer_ref or "", invoice_ref=invoice_ref)
    with transaction(c.engine) as conn:
        if found is None:
            return "not_charged" if _not_charged(conn, c, att, now) else "skipped"
        _audit(
            conn,
            att,
            now,
            reason=found.status,
            result="succeeded" if found.succeeded else "not_charged",
        )
        apply_answers(conn, c, [(key, found)], now)
    return found.status


def _audit(conn: Connection, att: RowMapping, now: datetime, *, reason: str, result: str) -> None:
    record(
        conn,
        "charge_resolved",
        now,
        invoice_id=att["invoice_id"],
        customer_id=att["customer_id"],
        payment_method_id=att["payment_method_id"],
        reason=reason,
        attempt=att["attempt_no"],
        result=result,
    )


def _not_charged(conn: Connection, c: Pipeline, att: RowMapping, now: datetime) -> bool:
    """Mark the attempt ``not_charged`` if its stamp is still the one looked up, and retry the
    invoice at once; returns whether it was marked."""
    marked = status.move(
        conn,
        payment_attempts,
        [(att["id"], att["status"])],
        AttemptStatus.not_charged,
        where=[payment_attempts.c.created_at == att["created_at"]],
        resolved_at=now,
    )
    if not marked:
        return False
    _audit(conn, att, now, reason="not_charged", result="not_charged")
    retried = conn.execute(
        update(invoices)
        .where(
            invoices.c.id == att["invoice_id"],
            invoices.c.status == InvoiceStatus.open.value,
            invoices.c.next_attempt_at.is_(None),
            invoices.c.stop_reason.is_(None),
        )
        .values(
            next_attempt_at=now,
            next_attempt_reason="retry_after_unknown",
            # Enqueued at once below, and claimed as the producer claims.
            retry_claimed_until=(
                now + timedelta(seconds=c.settings.timing.claim_lease_s)
                if c.dispatcher.sends
                else None
            ),
            updated_at=now,
        )
    ).rowcount
    if retried:
        inv = rows.get(conn, invoices, att["invoice_id"])
        item = (inv["id"], int(inv["attempt_count"]) + 1)
        after_commit(conn, lambda: c.dispatcher.retry_charges([item]))
    log.info(
        "charge %s for invoice %s was not made; retrying", att["idempotency_key"], att["invoice_id"]
    )
    return True
