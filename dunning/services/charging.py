"""Charging an open invoice: write the attempt, call the gateway, apply the answer.

The attempt row, with its idempotency key ``inv_<invoice>_att_<n>``, is committed before the
gateway is called. An invoice has at most one attempt in flight. A crash anywhere leaves either
no row (nothing was charged) or a ``pending``/``unknown`` row that :func:`resolve_attempt` settles
by looking the charge up, never by charging again blind.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, exists, select, update

from dunning.bootstrap import Container
from dunning.errors import GatewayUnavailable
from dunning.gateways.base import ChargeRequest, ChargeResult
from dunning.model import AttemptStatus, Initiator
from dunning.policy.days import window_end
from dunning.policy.limits import check_limits
from dunning.policy.timing import next_local, parse_clock, zone
from dunning.policy.types import AttemptRecord, LimitCheck, PlanPolicy
from dunning.services import outcomes
from dunning.services.audit import record
from dunning.store import queries
from dunning.store.tables import invoices, payment_attempts
from dunning.store.uow import transaction

log = logging.getLogger(__name__)

LIMIT_LOOKBACK = timedelta(days=31)


def log_fields(charge: PreparedCharge) -> dict[str, str]:
    """The ids a log line about a charge carries as JSON fields."""
    return {
        "invoice": charge.invoice_id,
        "customer": charge.customer_id,
        "idempotency_key": charge.key,
    }


def idempotency_key(invoice_id: str, attempt_no: int) -> str:
    return f"inv_{invoice_id}_att_{attempt_no}"


@dataclass(frozen=True, slots=True)
class PreparedCharge:
    key: str
    invoice_id: str
    attempt_no: int
    customer_id: str
    payment_method_id: str
    token: str
    amount: int
    currency: str
    initiator: Initiator
    reason: str


def in_flight(conn: Connection, invoice_id: str) -> bool:
    stmt = select(
        exists().where(
            payment_attempts.c.invoice_id == invoice_id,
            payment_attempts.c.status.in_(["pending", "unknown"]),
        )
    )
    return bool(conn.execute(stmt).scalar())


def usable(card: RowMapping | None) -> bool:
    """Whether a card may be charged: active, with a token, and nothing blocking it."""
    return bool(
        card and card["status"] == "active" and card["token"] and not card["blocked_reason"]
    )


def _in_window(
    conn: Connection, inv: RowMapping, verdict: LimitCheck, policy: PlanPolicy
) -> LimitCheck:
    """A limit's earliest time as the policy runs retries: at the customer's retry morning,
    never at or after the end of the dunning window (then the retries stop instead)."""
    if verdict.earliest is None or inv["first_failed_at"] is None:
        return verdict
    tz = queries.customer(conn, inv["customer_id"])["timezone"] or "UTC"
    at = next_local(verdict.earliest, parse_clock(policy.retry_local_time), zone(tz))
    if at >= window_end(inv["first_failed_at"], tz, policy):
        return replace(
            verdict, message=f"{verdict.message} That is after the window.", earliest=None
        )
    return replace(verdict, earliest=at)


def allowed(
    conn: Connection,
    c: Container,
    inv: RowMapping,
    sub: RowMapping,
    card: RowMapping,
    history: Sequence[AttemptRecord],
    now: datetime,
) -> bool:
    """Whether the network limits allow the next attempt of ``inv`` on ``card`` now, given the
    card's recent ``history``; when they do not, the retry is postponed or stopped."""
    policy = c.policy.for_plan(sub["plan"], sub["interval"])
    verdict = check_limits(
        history,
        network=card["network"],
        amount=inv["amount"],
        now=now,
        policy=policy,
        first_decline_at=inv["first_failed_at"],
    )
    if verdict.allowed:
        return True
    outcomes.postpone_or_stop(conn, inv, _in_window(conn, inv, verdict, policy), now)
    return False


def attempt_values(
    inv: RowMapping,
    card: RowMapping,
    attempt_no: int,
    *,
    initiator: Initiator,
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    """The pending ``payment_attempts`` row of attempt ``attempt_no`` of ``inv`` on ``card``."""
    return {
        "idempotency_key": idempotency_key(inv["id"], attempt_no),
        "invoice_id": inv["id"],
        "attempt_no": attempt_no,
        "customer_id": inv["customer_id"],
        "payment_method_id": card["id"],
        "network": card["network"],
        "amount": inv["amount"],
        "currency": inv["currency"],
        "initiator": str(initiator),
        "status": str(AttemptStatus.pending),
        "reason": reason,
        "created_at": now,
    }


def prepared_charge(values: Mapping[str, Any], token: str) -> PreparedCharge:
    """The charge to make for an attempt row written with :func:`attempt_values`."""
    return PreparedCharge(
        values["idempotency_key"],
        values["invoice_id"],
        values["attempt_no"],
        values["customer_id"],
        values["payment_method_id"],
        token,
        values["amount"],
        values["currency"],
        Initiator(values["initiator"]),
        values["reason"],
    )


def prepare(
    conn: Connection,
    c: Container,
    inv: RowMapping,
    card: RowMapping,
    *,
    initiator: Initiator,
    reason: str,
    now: datetime,
) -> PreparedCharge | None:
    """Check the network limits, then write the pending attempt; ``None`` when not allowed."""
    sub = queries.subscription(conn, inv["subscription_id"])
    history = queries.card_attempts(conn, card["id"], now - LIMIT_LOOKBACK)
    if not allowed(conn, c, inv, sub, card, history, now):
        return None
    attempt_no = int(inv["attempt_count"]) + 1
    claimed = conn.execute(
        update(invoices)
        .where(invoices.c.id == inv["id"], invoices.c.attempt_count == attempt_no - 1)
        .values(
            attempt_count=attempt_no,
            next_attempt_at=None,
            retry_claimed_until=None,
            updated_at=now,
        )
    ).rowcount
    if claimed != 1:
        return None
    values = attempt_values(inv, card, attempt_no, initiator=initiator, reason=reason, now=now)
    conn.execute(payment_attempts.insert().values(**values))
    return prepared_charge(values, card["token"])


def request_for(charge: PreparedCharge) -> ChargeRequest:
    """The gateway request of a prepared charge, under its idempotency key."""
    return ChargeRequest(
        customer_id=charge.customer_id,
        token=charge.token,
        amount=charge.amount,
        currency=charge.currency,
        idempotency_key=charge.key,
        initiator=charge.initiator,
        metadata={"invoice": charge.invoice_id, "idempotency_key": charge.key},
    )


def execute(c: Container, charge: PreparedCharge, now: datetime) -> ChargeResult | None:
    """Call the gateway once and apply the answer; ``None`` when the outcome is unknown."""
    try:
        result = c.gateway.charge(request_for(charge))
    except GatewayUnavailable as exc:
        log.warning(
            "charge %s for invoice %s: outcome unknown (%s)",
            charge.key,
            charge.invoice_id,
            exc,
            extra=log_fields(charge),
        )
        with transaction(c.engine) as conn:
            outcomes.mark_unknown(conn, charge.key, str(exc), now)
        return None
    with transaction(c.engine) as conn:
        outcomes.apply_result(conn, c, charge.key, result, now)
    log.info(
        "charge %s for invoice %s: %s",
        charge.key,
        charge.invoice_id,
        result.status,
        extra=log_fields(charge),
    )
    return result


def resolve_attempt(c: Container, key: str, now: datetime) -> str:
    """Settle an attempt whose outcome is unknown by looking it up at the gateway."""
    with c.engine.connect() as conn:
        row = (
            conn.execute(select(payment_attempts).where(payment_attempts.c.idempotency_key == key))
            .mappings()
            .first()
        )
    if row is None or row["status"] not in ("pending", "unknown"):
        return "skipped"
    if row["created_at"] > now - timedelta(seconds=c.settings.timing.unknown_after_s):
        return "skipped"  # sent since it was found unanswered: it may still be on its way
    found = c.gateway.lookup(key, customer_id=row["customer_id"])
    with transaction(c.engine) as conn:
        if found is None:
            if not outcomes.mark_not_charged(conn, c, key, now, sent_at=row["created_at"]):
                return "skipped"
            record(
                conn,
                "charge_resolved",
                now,
                invoice_id=row["invoice_id"],
                customer_id=row["customer_id"],
                payment_method_id=row["payment_method_id"],
                reason="not_charged",
                attempt=row["attempt_no"],
                result="not_charged",
            )
            return "not_charged"
        record(
            conn,
            "charge_resolved",
            now,
            invoice_id=row["invoice_id"],
            customer_id=row["customer_id"],
            payment_method_id=row["payment_method_id"],
            reason=found.status,
            attempt=row["attempt_no"],
            result="succeeded" if found.succeeded else "not_charged",
        )
        outcomes.apply_result(conn, c, key, found, now)
    return found.status
