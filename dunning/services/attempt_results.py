"""Recording what the gateway answered for our charges: succeeded, declined, or no answer.

Every function runs inside the caller's transaction and applies an answer once: a second copy
of the same answer changes nothing. An answer that arrives for an attempt the resolver had
marked ``not_charged`` (a slow call, a webhook after the look-up) is applied all the same:
what the gateway says happened is what happened, and money collected twice becomes an
overpayment to refund (:mod:`dunning.services.settlement`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, update

from dunning.gateways.base import ChargeResult
from dunning.model import AttemptStatus, allowed_sources
from dunning.policy.declines import classify
from dunning.policy.types import Verdict
from dunning.ports import Pipeline
from dunning.services.audit import audit_row, record_many
from dunning.services.case import load_cases
from dunning.services.counters import count_charges
from dunning.services.retry_schedule import after_decline
from dunning.services.settlement import Payment, settle
from dunning.store import attempts, rows, status
from dunning.store.tables import payment_attempts, payment_methods

log = logging.getLogger(__name__)
# What an answer may still move: the model's sources of ``succeeded`` (unresolved, or a late
# answer after a look-up found nothing).
_ANSWERABLE = allowed_sources(AttemptStatus.succeeded)


def attempt_audit(
    att: Mapping[Any, Any], result: str, now: datetime, **data: Any
) -> dict[str, Any]:
    """The ``charge_attempt`` audit row of an attempt's result."""
    return audit_row(
        "charge_attempt",
        now,
        invoice_id=att["invoice_id"],
        customer_id=att["customer_id"],
        payment_method_id=att["payment_method_id"],
        reason=att["reason"],
        attempt=att["attempt_no"],
        result=result,
        initiator=att["initiator"],
        amount=att["amount"],
        currency=att["currency"],
        **({"decline_class": None} | attempts.decline_columns(None) | data),
    )


def apply_answers(
    conn: Connection, c: Pipeline, answers: Sequence[tuple[str, ChargeResult]], now: datetime
) -> None:
    """Apply the gateway's answers for attempts ``(key, result)``, in order; successes are
    written set-based. A key given twice is applied once."""
    found = attempts.by_keys(conn, (key for key, _ in answers))
    paid: list[tuple[Mapping[Any, Any], ChargeResult]] = []
    for key, result in answers:
        att = found.pop(key, None)
        if att is None or att["status"] not in _ANSWERABLE:
            continue
        if result.succeeded:
            paid.append((att, result))
            continue
        _apply_successes(conn, c, paid, now)  # keep the answers' order
        paid = []
        _apply_decline(conn, c, att, result, now)
    _apply_successes(conn, c, paid, now)


def _apply_successes(
    conn: Connection, c: Pipeline, paid: list[tuple[Mapping[Any, Any], ChargeResult]], now: datetime
) -> None:
    if not paid:
        return
    late = [att["idempotency_key"] for att, _ in paid if att["status"] == AttemptStatus.not_charged]
    if late:
        log.warning("charges %s succeeded after a look-up had found nothing", ", ".join(late))
    conn.execute(
        update(payment_attempts)
        .where(
            payment_attempts.c.id == bindparam("att_id"),
            payment_attempts.c.status == bindparam("was"),
        )
        .values(
            status=AttemptStatus.succeeded.value,
            gateway_charge_id=bindparam("charge_id"),
            resolved_at=now,
        ),
        [{"att_id": a["id"], "was": a["status"], "charge_id": r.charge_id} for a, r in paid],
    )
    record_many(conn, [attempt_audit(att, "succeeded", now) for att, _ in paid])
    count_charges(conn, [("succeeded", None, a["amount"], a["currency"]) for a, _ in paid])
    # A success lifts a block on the card (only rows that have one are written).
    conn.execute(
        update(payment_methods)
        .where(
            payment_methods.c.id.in_({att["payment_method_id"] for att, _ in paid}),
            payment_methods.c.blocked_reason.is_not(None),
        )
        .values(blocked_reason=None)
    )
    payments = [
        Payment(
            att["invoice_id"],
            att["initiator"],
            att["idempotency_key"],
            result.charge_id,
            att["amount"],
            att["currency"],
        )
        for att, result in paid
    ]
    settle(conn, c, payments, now)


def _apply_decline(
    conn: Connection, c: Pipeline, att: Mapping[Any, Any], result: ChargeResult, now: datetime
) -> None:
    card = rows.get(conn, payment_methods, att["payment_method_id"])
    cls = classify(result.decline, card["network"], gateway=c.gateway.name)
    if cls.verdict in (Verdict.duplicate, Verdict.unknown):
        # Not a decline: the charge may exist. Leave it for the resolver's look-up.
        mark_unknown(conn, att, f"gateway answered {cls.reason}", now)
        count_charges(conn, [("unknown", cls.decline_class, att["amount"], att["currency"])])
        return
    codes: dict[str, Any] = dict(attempts.decline_columns(result.decline))
    status.move(
        conn,
        payment_attempts,
        [(att["id"], att["status"])],
        AttemptStatus.declined,
        gateway_charge_id=result.charge_id,
        resolved_at=now,
        decline_class=cls.decline_class,
        **codes,
    )
    record_many(
        conn, [attempt_audit(att, "declined", now, decline_class=cls.decline_class, **codes)]
    )
    count_charges(conn, [("declined", cls.decline_class, att["amount"], att["currency"])])
    if att["status"] == AttemptStatus.not_charged:
        return  # a late decline: a newer attempt has taken its place in the schedule
    case = load_cases(conn, [att["invoice_id"]])[att["invoice_id"]]
    # The first decline the customer could hear of may follow attempts that were never made
    # (a gateway error the look-up found no charge for): it is still the first failure.
    first = not attempts.answered_before(conn, att["invoice_id"], att["attempt_no"])
    told = False if first else None
    after_decline(conn, c, case, card, cls, now, attempt_no=att["attempt_no"], told=told)


def mark_unknown(conn: Connection, att: Mapping[Any, Any], error: str, now: datetime) -> None:
    """The gateway did not answer: the outcome waits for the resolver's look-up."""
    if att["status"] != AttemptStatus.pending:
        return
    status.move(
        conn,
        payment_attempts,
        [(att["id"], att["status"])],
        AttemptStatus.unknown,
        error=error[:500],
    )
    record_many(conn, [attempt_audit(att, "error", now)])


def mark_unknown_keys(conn: Connection, errors: Mapping[str, str], now: datetime) -> None:
    """:func:`mark_unknown` for attempts by key, ``{key: error}``."""
    for key, att in attempts.by_keys(conn, errors).items():
        mark_unknown(conn, att, errors[key], now)
