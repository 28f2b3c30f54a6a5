"""A failed renewal charge reported from outside (a gateway webhook, the simulation): open the
invoice if it is new, record the attempt, and start dunning. An invoice of a cancelled
subscription is recorded void: nothing will ever charge it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from dunning.model import AttemptStatus, Initiator, InvoiceStatus, SubscriptionStatus
from dunning.policy.declines import classify
from dunning.policy.schedule import dunning_steps
from dunning.policy.types import Decline, Verdict
from dunning.ports import Pipeline
from dunning.services import outbound
from dunning.services.attempt_results import attempt_audit
from dunning.services.audit import record, record_many
from dunning.services.case import Case
from dunning.services.counters import count_charges
from dunning.services.retry_schedule import after_decline
from dunning.services.subscription_state import move_subscription
from dunning.store import attempts, invoices, rows
from dunning.store.tables import customers, payment_methods, subscriptions
from dunning.store.tables import invoices as invoice_table
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
    # The Stripe Billing invoice that failed, when Stripe reported it: charges pay through it.
    stripe_invoice_id: str | None = None


def record_failure(c: Pipeline, failure: FailedCharge, now: datetime) -> str:
    """Start (or continue) dunning for an invoice whose charge failed. Safe to run twice.
    Returns ``recorded``, ``known_attempt``, ``not_open``, ``cancelled`` or ``no_card``."""
    with transaction(c.engine) as conn:
        return record_failure_in(conn, c, failure, now)


def record_failure_in(conn: Connection, c: Pipeline, failure: FailedCharge, now: datetime) -> str:
    """:func:`record_failure` inside the caller's transaction (``dunning.store.uow``)."""
    if failure.attempt_key and attempts.exists(conn, failure.attempt_key):
        return "known_attempt"
    sub = rows.get(conn, subscriptions, failure.subscription_id)
    cust = rows.get(conn, customers, sub["customer_id"])
    inv: Mapping[Any, Any] | None = rows.find(conn, invoice_table, failure.invoice_id)
    first = inv is None or inv["first_failed_at"] is None
    if inv is None:
        inv = _open_invoice(conn, c, failure, sub, cust, now)
    elif inv["status"] != InvoiceStatus.open:
        return "not_open"
    elif inv["first_failed_at"] is None:
        invoices.set_values(conn, inv["id"], now=now, first_failed_at=failure.occurred_at)
        inv = dict(inv, first_failed_at=failure.occurred_at)
    if sub["status"] == SubscriptionStatus.cancelled:
        return "cancelled"
    card = rows.find(conn, payment_methods, sub["payment_method_id"] or "")
    if card is not None:
        _record_attempt(conn, c, Case(inv, sub, cust, card), failure, now)
    if first:
        code = failure.decline.decline_code if failure.decline else None
        outbound.first_failure(conn, rows.get(conn, invoice_table, inv["id"]), code, now)
    return "recorded" if card is not None else "no_card"


def _open_invoice(
    conn: Connection,
    c: Pipeline,
    failure: FailedCharge,
    sub: Mapping[Any, Any],
    cust: Mapping[Any, Any],
    now: datetime,
) -> Mapping[Any, Any]:
    """Write the new invoice (void when its subscription is cancelled); return its row."""
    cancelled = sub["status"] == SubscriptionStatus.cancelled
    status = InvoiceStatus.void if cancelled else InvoiceStatus.open
    policy = c.policy.for_plan(sub["plan"], sub["interval"])
    steps = dunning_steps(failure.occurred_at, cust["timezone"] or "UTC", policy)
    inv = (
        conn.execute(
            invoice_table.insert()
            .values(
                id=failure.invoice_id,
                subscription_id=sub["id"],
                customer_id=cust["id"],
                amount=failure.amount,
                currency=failure.currency.upper(),
                status=status.value,
                attempt_count=0,
                first_failed_at=failure.occurred_at,
                next_step_at=steps[0].at if steps and not cancelled else None,
                stop_reason="cancelled" if cancelled else None,
                stripe_invoice_id=failure.stripe_invoice_id,
                created_at=now,
                updated_at=now,
            )
            .returning(*invoice_table.c)
        )
        .mappings()
        .one()
    )
    record(
        conn,
        "invoice_status",
        now,
        invoice_id=failure.invoice_id,
        customer_id=cust["id"],
        subscription_id=sub["id"],
        reason="subscription_cancelled" if cancelled else "payment_failed",
        **{"from": None, "to": status.value},
    )
    return inv


def _record_attempt(
    conn: Connection, c: Pipeline, case: Case, failure: FailedCharge, now: datetime
) -> None:
    card = case.card
    assert card is not None  # the caller checked
    attempt_no = int(case.invoice["attempt_count"]) + 1
    invoices.set_values(conn, case.id, now=now, attempt_count=attempt_no)
    cls = classify(failure.decline, card["network"], gateway=c.gateway.name)
    # Not a decline (a gateway error such as Quickpay 50000, a duplicate): the charge may
    # exist. It waits as ``unknown`` for the resolver's look-up, which settles it or, finding
    # nothing, charges the invoice again at once; no retry is scheduled or stopped meanwhile.
    # A failure reported with no details at all (``decline=None``) is a generic decline.
    unknown = failure.decline is not None and cls.verdict in (Verdict.unknown, Verdict.duplicate)
    reason = "renewal" if attempt_no == 1 else "gateway"
    row: dict[str, Any] = attempts.new_row(
        case.invoice, card, attempt_no, initiator=Initiator.merchant, reason=reason,
        at=failure.occurred_at,
        status=AttemptStatus.unknown if unknown else AttemptStatus.declined,
    )  # fmt: skip
    if failure.attempt_key:
        row["idempotency_key"] = failure.attempt_key
    codes = attempts.decline_columns(failure.decline)
    row |= codes | {
        "decline_class": cls.decline_class,
        "gateway_charge_id": failure.gateway_charge_id,
    }
    row |= {"error": f"gateway answered {cls.reason}"} if unknown else {"resolved_at": now}
    attempts.insert_rows(conn, [row])
    result = "error" if unknown else "declined"
    audit = attempt_audit(
        row, result, failure.occurred_at, decline_class=cls.decline_class, **codes
    )
    record_many(conn, [audit])
    move_subscription(
        conn, case.subscription, SubscriptionStatus.past_due, now, reason="payment_failed"
    )
    if unknown:
        count_charges(conn, [("unknown", cls.decline_class, row["amount"], row["currency"])])
        return
    if cls.verdict is Verdict.unknown:
        cls = classify(Decline(decline_code="generic_decline"), card["network"])
    case = replace(case, invoice=dict(case.invoice, attempt_count=attempt_no))
    after_decline(conn, c, case, card, cls, now, attempt_no=attempt_no)
