"""Charging an open invoice: write the attempt, call the gateway, apply the answer.

The attempt row, with its idempotency key ``inv_<invoice>_att_<n>``, is committed before the
gateway is called. An invoice has at most one attempt in flight. A crash anywhere leaves either
no row (nothing was charged) or a ``pending``/``unknown`` row that :func:`resolve_attempt` settles
by looking the charge up, never by charging again blind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, RowMapping, exists, select, update

from dunning.bootstrap import Container
from dunning.errors import GatewayUnavailable
from dunning.gateways.base import ChargeRequest, ChargeResult
from dunning.model import AttemptStatus, Initiator
from dunning.policy.days import window_end
from dunning.policy.limits import check_limits
from dunning.policy.timing import next_local, parse_clock, zone
from dunning.policy.types import LimitCheck, PlanPolicy
from dunning.services import outcomes
from dunning.services.audit import record
from dunning.store import queries
from dunning.store.tables import invoices, payment_attempts, payment_methods
from dunning.store.uow import transaction

log = logging.getLogger(__name__)

LIMIT_LOOKBACK = timedelta(days=31)


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


def _card_for(conn: Connection, inv: RowMapping, c: Container) -> RowMapping | None:
    """The card the next attempt goes to: the policy's choice, else the subscription's."""
    sub = queries.subscription(conn, inv["subscription_id"])
    for card_id in (inv["retry_payment_method_id"], sub["payment_method_id"]):
        if card_id:
            card = queries.find(conn, payment_methods, card_id)
            if card and card["status"] == "active" and card["token"] and not card["blocked_reason"]:
                return card
    return None


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
    policy = c.policy.for_plan(sub["plan"], sub["interval"])
    verdict = check_limits(
        queries.card_attempts(conn, card["id"], now - LIMIT_LOOKBACK),
        network=card["network"],
        amount=inv["amount"],
        now=now,
        policy=policy,
        first_decline_at=inv["first_failed_at"],
    )
    if not verdict.allowed:
        outcomes.postpone_or_stop(conn, inv, _in_window(conn, inv, verdict, policy), now)
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
    key = idempotency_key(inv["id"], attempt_no)
    conn.execute(
        payment_attempts.insert().values(
            idempotency_key=key,
            invoice_id=inv["id"],
            attempt_no=attempt_no,
            customer_id=inv["customer_id"],
            payment_method_id=card["id"],
            network=card["network"],
            amount=inv["amount"],
            currency=inv["currency"],
            initiator=str(initiator),
            status=str(AttemptStatus.pending),
            reason=reason,
            created_at=now,
        )
    )
    return PreparedCharge(
        key,
        inv["id"],
        attempt_no,
        inv["customer_id"],
        card["id"],
        card["token"],
        inv["amount"],
        inv["currency"],
        initiator,
        reason,
    )


def prepare_retry(
    c: Container, invoice_id: str, attempt_no: int, now: datetime
) -> PreparedCharge | None:
    """The scheduled retry ``attempt_no`` of an invoice, if it is still due and allowed."""
    with transaction(c.engine) as conn:
        inv = queries.find(conn, invoices, invoice_id)
        if (
            inv is None
            or inv["status"] != "open"
            or inv["paused"]
            or inv["attempt_count"] != attempt_no - 1
            or inv["next_attempt_at"] is None
            or inv["next_attempt_at"] > now
            or in_flight(conn, invoice_id)
        ):
            return None
        card = _card_for(conn, inv, c)
        if card is None:
            outcomes.stop_retries(
                conn, inv, "needs_new_card", "No usable card is left to charge.", now
            )
            return None
        return prepare(
            conn,
            c,
            inv,
            card,
            initiator=Initiator.merchant,
            reason=inv["next_attempt_reason"] or "scheduled_retry",
            now=now,
        )


def execute(c: Container, charge: PreparedCharge, now: datetime) -> ChargeResult | None:
    """Call the gateway once and apply the answer; ``None`` when the outcome is unknown."""
    request = ChargeRequest(
        customer_id=charge.customer_id,
        token=charge.token,
        amount=charge.amount,
        currency=charge.currency,
        idempotency_key=charge.key,
        initiator=charge.initiator,
        metadata={"invoice": charge.invoice_id, "idempotency_key": charge.key},
    )
    try:
        result = c.gateway.charge(request)
    except GatewayUnavailable as exc:
        log.warning(
            "charge %s for invoice %s: outcome unknown (%s)", charge.key, charge.invoice_id, exc
        )
        with transaction(c.engine) as conn:
            outcomes.mark_unknown(conn, charge.key, str(exc), now)
        return None
    with transaction(c.engine) as conn:
        outcomes.apply_result(conn, c, charge.key, result, now)
    log.info("charge %s for invoice %s: %s", charge.key, charge.invoice_id, result.status)
    return result


def retry_charge(c: Container, invoice_id: str, attempt_no: int, now: datetime) -> str:
    """Make scheduled retry ``attempt_no``; safe to run twice. Returns what happened."""
    charge = prepare_retry(c, invoice_id, attempt_no, now)
    if charge is None:
        return "skipped"
    result = execute(c, charge, now)
    return result.status if result else "unknown"


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
    found = c.gateway.lookup(key, customer_id=row["customer_id"])
    with transaction(c.engine) as conn:
        if found is None:
            outcomes.mark_not_charged(conn, c, key, now)
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
