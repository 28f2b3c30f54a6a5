"""A failed renewal charge reported from outside (a gateway webhook, the simulation, an import):
open the invoice if it is new, record the attempt, and start dunning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from dunning.bootstrap import Container
from dunning.gateways.base import Decline
from dunning.model import SubscriptionStatus
from dunning.policy.declines import classify
from dunning.policy.schedule import dunning_steps
from dunning.policy.types import Verdict
from dunning.services import outcomes
from dunning.services.audit import record
from dunning.services.charging import idempotency_key
from dunning.store import queries
from dunning.store.tables import invoices, payment_attempts
from dunning.store.uow import transaction


@dataclass(frozen=True, slots=True)
class FailedCharge:
    invoice_id: str
    subscription_id: str
    amount: int
    currency: str
    decline: Decline | None
    occurred_at: datetime
    # Our idempotency key when the gateway reports a charge we made: then it is counted once.
    attempt_key: str | None = None
    gateway_charge_id: str | None = None


def record_failure(c: Container, failure: FailedCharge, now: datetime) -> str:
    """Start (or continue) dunning for an invoice whose charge failed. Safe to run twice."""
    with transaction(c.engine) as conn:
        if (
            failure.attempt_key
            and conn.execute(
                select(payment_attempts.c.id).where(
                    payment_attempts.c.idempotency_key == failure.attempt_key
                )
            ).first()
        ):
            return "known_attempt"
        sub = queries.subscription(conn, failure.subscription_id)
        cust = queries.customer(conn, sub["customer_id"])
        inv = queries.find(conn, invoices, failure.invoice_id)
        if inv is None:
            policy = c.policy.for_plan(sub["plan"], sub["interval"])
            steps = dunning_steps(failure.occurred_at, cust["timezone"] or "UTC", policy)
            conn.execute(
                invoices.insert().values(
                    id=failure.invoice_id,
                    subscription_id=sub["id"],
                    customer_id=cust["id"],
                    amount=failure.amount,
                    currency=failure.currency.upper(),
                    status="open",
                    attempt_count=0,
                    first_failed_at=failure.occurred_at,
                    next_step_at=steps[0].at if steps else None,
                    created_at=now,
                    updated_at=now,
                )
            )
            record(
                conn,
                "invoice_status",
                now,
                invoice_id=failure.invoice_id,
                customer_id=cust["id"],
                subscription_id=sub["id"],
                reason="payment_failed",
                **{"from": None, "to": "open"},
            )
            inv = queries.invoice(conn, failure.invoice_id)
        elif inv["status"] != "open":
            return "not_open"
        elif inv["first_failed_at"] is None:
            conn.execute(
                invoices.update()
                .where(invoices.c.id == inv["id"])
                .values(first_failed_at=failure.occurred_at)
            )
        card_id = sub["payment_method_id"]
        if card_id is None:
            return "no_card"
        card = queries.card(conn, card_id)
        attempt_no = int(inv["attempt_count"]) + 1
        d = failure.decline or Decline()
        cls = classify(failure.decline, card["network"], gateway=c.gateway.name)
        conn.execute(
            invoices.update()
            .where(invoices.c.id == inv["id"])
            .values(attempt_count=attempt_no, updated_at=now)
        )
        conn.execute(
            payment_attempts.insert().values(
                idempotency_key=failure.attempt_key or idempotency_key(inv["id"], attempt_no),
                invoice_id=inv["id"],
                attempt_no=attempt_no,
                customer_id=cust["id"],
                payment_method_id=card_id,
                network=card["network"],
                amount=inv["amount"],
                currency=inv["currency"],
                initiator="merchant",
                status="declined",
                decline_code=d.decline_code,
                network_code=d.network_code,
                advice_code=d.advice_code,
                network_advice_code=d.network_advice_code,
                decline_class=cls.decline_class,
                reason="renewal" if attempt_no == 1 else "gateway",
                gateway_charge_id=failure.gateway_charge_id,
                created_at=failure.occurred_at,
                resolved_at=now,
            )
        )
        record(
            conn,
            "charge_attempt",
            failure.occurred_at,
            invoice_id=inv["id"],
            customer_id=cust["id"],
            payment_method_id=card_id,
            reason="renewal" if attempt_no == 1 else "gateway",
            attempt=attempt_no,
            result="declined",
            initiator="merchant",
            decline_class=cls.decline_class,
            amount=inv["amount"],
            currency=inv["currency"],
            decline_code=d.decline_code,
            network_code=d.network_code,
            advice_code=d.advice_code,
            network_advice_code=d.network_advice_code,
        )
        outcomes.set_subscription_status(
            conn, sub, SubscriptionStatus.past_due, now, reason="payment_failed"
        )
        if cls.verdict in (Verdict.unknown, Verdict.duplicate):
            cls = classify(Decline(decline_code="generic_decline"), card["network"])
        outcomes.after_decline(conn, c, inv["id"], card, cls, now, attempt_no=attempt_no)
    return "recorded"
