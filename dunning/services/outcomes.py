"""What a charge's answer does to the invoice, subscription, card and outbox.

Every function runs inside the caller's transaction and re-reads what it changes; applying the
same answer twice changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, select, update

from dunning.bootstrap import Container
from dunning.gateways.base import ChargeResult
from dunning.model import InvoiceStatus, SubscriptionStatus, allowed_sources
from dunning.policy.declines import classify
from dunning.policy.schedule import dunning_steps, next_retry
from dunning.policy.types import Classification, LimitCheck, RetryDecision, RetryState, Verdict
from dunning.services import notify, outbound
from dunning.services.audit import record
from dunning.store import queries
from dunning.store.tables import (
    customers,
    invoices,
    payment_attempts,
    payment_methods,
    subscriptions,
)
from dunning.store.uow import after_commit

STOP_VERDICTS = (Verdict.needs_new_card, Verdict.never)
UNRESOLVED = ("pending", "unknown")
_LOOKBACK = timedelta(days=31)


def _attempt(conn: Connection, key: str) -> RowMapping | None:
    return (
        conn.execute(select(payment_attempts).where(payment_attempts.c.idempotency_key == key))
        .mappings()
        .first()
    )


def _audit_attempt(
    conn: Connection,
    att: RowMapping,
    result: str,
    now: datetime,
    cls: Classification | None = None,
    **codes: Any,
) -> None:
    record(
        conn,
        "charge_attempt",
        now,
        invoice_id=att["invoice_id"],
        customer_id=att["customer_id"],
        payment_method_id=att["payment_method_id"],
        reason=att["reason"],
        attempt=att["attempt_no"],
        result=result,
        initiator=att["initiator"],
        decline_class=cls.decline_class if cls else None,
        amount=att["amount"],
        currency=att["currency"],
        **codes,
    )


def apply_result(
    conn: Connection, c: Container, key: str, result: ChargeResult, now: datetime
) -> None:
    """Record the gateway's answer for attempt ``key`` and act on it."""
    att = _attempt(conn, key)
    if att is None or att["status"] not in UNRESOLVED:
        return
    if result.succeeded:
        conn.execute(
            update(payment_attempts)
            .where(payment_attempts.c.id == att["id"])
            .values(status="succeeded", gateway_charge_id=result.charge_id, resolved_at=now)
        )
        _audit_attempt(
            conn,
            att,
            "succeeded",
            now,
            decline_code=None,
            network_code=None,
            advice_code=None,
            network_advice_code=None,
        )
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.id == att["payment_method_id"])
            .values(blocked_reason=None)
        )
        settle_paid(conn, c, att["invoice_id"], now, source=att["initiator"])
        return
    card = queries.card(conn, att["payment_method_id"])
    cls = classify(result.decline, card["network"], gateway=c.gateway.name)
    d = result.decline
    codes = {
        "decline_code": d.decline_code if d else None,
        "network_code": d.network_code if d else None,
        "advice_code": d.advice_code if d else None,
        "network_advice_code": d.network_advice_code if d else None,
    }
    if cls.verdict in (Verdict.duplicate, Verdict.unknown):
        # Not a decline: the charge may exist. Leave it for the resolver's look-up.
        mark_unknown(conn, key, f"gateway answered {cls.reason}", now)
        return
    conn.execute(
        update(payment_attempts)
        .where(payment_attempts.c.id == att["id"])
        .values(
            status="declined",
            gateway_charge_id=result.charge_id,
            resolved_at=now,
            decline_class=cls.decline_class,
            **codes,
        )
    )
    _audit_attempt(conn, att, "declined", now, cls, **codes)
    after_decline(conn, c, att["invoice_id"], card, cls, now, attempt_no=att["attempt_no"])


def after_decline(
    conn: Connection,
    c: Container,
    invoice_id: str,
    card: RowMapping,
    cls: Classification,
    now: datetime,
    *,
    attempt_no: int,
) -> None:
    """Decide the next retry (or stop) and tell the customer."""
    inv = queries.invoice(conn, invoice_id)
    values: dict[str, Any] = {"last_decline_code": cls.decline_class, "updated_at": now}
    values["last_decline_class"] = cls.verdict.value
    if cls.verdict in STOP_VERDICTS:
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.id == card["id"])
            .values(blocked_reason=cls.reason)
        )
    decision = _decide(conn, c, inv, card, now)
    if inv["status"] == "open":
        if decision.action == "retry" and decision.at is not None:
            values |= {
                "next_attempt_at": decision.at,
                "next_attempt_reason": decision.reason,
                "retry_payment_method_id": decision.payment_method_id,
            }
            record(
                conn,
                "retry_scheduled",
                now,
                invoice_id=invoice_id,
                customer_id=inv["customer_id"],
                reason=decision.reason,
                message=decision.message,
                attempt=attempt_no + 1,
                due=decision.at,
            )
        else:
            values |= {"next_attempt_at": None, "stop_reason": decision.reason}
            record(
                conn,
                "retry_stopped",
                now,
                invoice_id=invoice_id,
                customer_id=inv["customer_id"],
                reason=decision.reason,
                message=decision.message,
            )
    conn.execute(update(invoices).where(invoices.c.id == invoice_id).values(**values))
    kind = None
    if attempt_no == 1:
        kind = "action_required" if cls.verdict in STOP_VERDICTS else "payment_failed"
    elif cls.verdict in STOP_VERDICTS:
        kind = "action_required"
    if kind:
        queue_invoice_email(
            conn,
            c,
            kind,
            invoice_id,
            now,
            next_attempt_at=decision.at if decision.action == "retry" else None,
        )


def _decide(
    conn: Connection, c: Container, inv: RowMapping, card: RowMapping, now: datetime
) -> RetryDecision:
    sub = queries.subscription(conn, inv["subscription_id"])
    cust = queries.customer(conn, inv["customer_id"])
    policy = c.policy.for_plan(sub["plan"], sub["interval"])
    backups = tuple(
        (r["id"], r["network"])
        for r in queries.usable_cards(conn, inv["customer_id"])
        if r["id"] != card["id"]
    )
    state = RetryState(
        invoice_id=inv["id"],
        first_failed_at=inv["first_failed_at"] or now,
        plan=sub["plan"],
        interval=sub["interval"],
        customer_timezone=cust["timezone"] or "UTC",
        payment_method_id=card["id"],
        network=card["network"],
        amount=inv["amount"],
        invoice_attempts=queries.invoice_attempts(conn, inv["id"]),
        card_attempts=queries.card_attempts(conn, card["id"], now - _LOOKBACK),
        backup_cards=backups,
    )
    return next_retry(state, now, policy)


def settle_paid(
    conn: Connection, c: Container, invoice_id: str, now: datetime, *, source: str
) -> bool:
    """Mark an invoice paid (by a retry, a new card or elsewhere); reactivate; send a receipt."""
    inv = queries.invoice(conn, invoice_id)
    if inv["status"] not in allowed_sources(InvoiceStatus.paid):
        return False
    changed = conn.execute(
        update(invoices)
        .where(invoices.c.id == invoice_id, invoices.c.status == inv["status"])
        .values(
            status="paid",
            paid_at=now,
            next_attempt_at=None,
            next_step_at=None,
            retry_claimed_until=None,
            step_claimed_until=None,
            updated_at=now,
        )
    ).rowcount
    if changed != 1:
        return False
    record(
        conn,
        "invoice_status",
        now,
        invoice_id=invoice_id,
        customer_id=inv["customer_id"],
        reason=source,
        **{"from": inv["status"], "to": "paid"},
    )
    sub = queries.subscription(conn, inv["subscription_id"])
    set_subscription_status(conn, sub, SubscriptionStatus.active, now, reason="paid")
    conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id == sub["id"])
        .values(last_payment_at=now, updated_at=now)
    )
    conn.execute(
        update(customers)
        .where(customers.c.id == inv["customer_id"])
        .values(last_payment_at=now, updated_at=now)
    )
    notify.cancel_pending(conn, invoice_id=invoice_id)
    if inv["first_failed_at"] is not None:
        queue_invoice_email(conn, c, "payment_recovered", invoice_id, now, paid_at=now)
        outbound.invoice_event(conn, "invoice.recovered", inv, now, status="paid", source=source)
    return True


def set_subscription_status(
    conn: Connection, sub: RowMapping, target: SubscriptionStatus, now: datetime, *, reason: str
) -> bool:
    """Move a subscription along the lifecycle; a move the lifecycle forbids is skipped."""
    if sub["status"] == target or sub["status"] not in allowed_sources(target):
        return False
    extra: dict[str, Any] = {}
    if target is SubscriptionStatus.suspended:
        extra["suspended_at"] = now
    if target is SubscriptionStatus.cancelled:
        extra["cancelled_at"] = now
    changed = conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id == sub["id"], subscriptions.c.status == sub["status"])
        .values(status=target.value, updated_at=now, **extra)
    ).rowcount
    if changed:
        record(
            conn,
            "subscription_status",
            now,
            subscription_id=sub["id"],
            customer_id=sub["customer_id"],
            reason=reason,
            **{"from": sub["status"], "to": target.value},
        )
        outbound.subscription_status_changed(conn, sub, target.value, now)
    return bool(changed)


def mark_unknown(conn: Connection, key: str, error: str, now: datetime) -> None:
    att = _attempt(conn, key)
    if att is None or att["status"] != "pending":
        return
    conn.execute(
        update(payment_attempts)
        .where(payment_attempts.c.id == att["id"])
        .values(status="unknown", error=error[:500])
    )
    _audit_attempt(
        conn,
        att,
        "error",
        now,
        decline_code=None,
        network_code=None,
        advice_code=None,
        network_advice_code=None,
    )


def mark_not_charged(conn: Connection, c: Container, key: str, now: datetime) -> None:
    """The look-up found no charge: the attempt never happened; retry soon with a new key."""
    att = _attempt(conn, key)
    if att is None or att["status"] not in UNRESOLVED:
        return
    conn.execute(
        update(payment_attempts)
        .where(payment_attempts.c.id == att["id"])
        .values(status="not_charged", resolved_at=now)
    )
    conn.execute(
        update(invoices)
        .where(
            invoices.c.id == att["invoice_id"],
            invoices.c.status == "open",
            invoices.c.next_attempt_at.is_(None),
            invoices.c.stop_reason.is_(None),
        )
        .values(next_attempt_at=now, next_attempt_reason="retry_after_unknown", updated_at=now)
    )


def stop_retries(
    conn: Connection, inv: RowMapping, reason: str, message: str, now: datetime
) -> None:
    conn.execute(
        update(invoices)
        .where(invoices.c.id == inv["id"])
        .values(next_attempt_at=None, retry_claimed_until=None, stop_reason=reason, updated_at=now)
    )
    record(
        conn,
        "retry_stopped",
        now,
        invoice_id=inv["id"],
        customer_id=inv["customer_id"],
        reason=reason,
        message=message,
    )


def postpone_or_stop(conn: Connection, inv: RowMapping, check: LimitCheck, now: datetime) -> None:
    """A network limit forbids the attempt now: move it to the earliest allowed time, or stop."""
    if check.earliest is None:
        stop_retries(conn, inv, check.reason, check.message, now)
        return
    conn.execute(
        update(invoices)
        .where(invoices.c.id == inv["id"])
        .values(
            next_attempt_at=check.earliest,
            next_attempt_reason=check.reason,
            retry_claimed_until=None,
            updated_at=now,
        )
    )
    record(
        conn,
        "retry_scheduled",
        now,
        invoice_id=inv["id"],
        customer_id=inv["customer_id"],
        reason=check.reason,
        message=check.message,
        attempt=inv["attempt_count"] + 1,
        due=check.earliest,
    )


def queue_invoice_email(
    conn: Connection,
    c: Container,
    kind: str,
    invoice_id: str,
    now: datetime,
    *,
    dedup_suffix: str = "",
    next_attempt_at: datetime | None = None,
    paid_at: datetime | None = None,
) -> list[int]:
    """Queue one email about an invoice, with its plan, amount, card and a fresh link."""
    inv = queries.invoice(conn, invoice_id)
    sub = queries.subscription(conn, inv["subscription_id"])
    cust = queries.customer(conn, inv["customer_id"])
    card = queries.find(conn, payment_methods, sub["payment_method_id"] or "")
    policy = c.policy.for_plan(sub["plan"], sub["interval"])
    suspend_at = None
    if inv["first_failed_at"] is not None:
        steps = dunning_steps(inv["first_failed_at"], cust["timezone"] or "UTC", policy)
        suspend_at = next((s.at for s in steps if s.kind == "suspend"), None)
    purpose = "reactivate" if kind == "subscription_suspended" else "update_card"
    link = None if kind == "payment_recovered" else notify.link_for(c, cust, purpose, now)
    ctx = notify.context(
        cust,
        plan=sub["plan"],
        amount=inv["amount"],
        currency=inv["currency"],
        card=card,
        update_url=link,
        next_attempt_at=next_attempt_at or inv["next_attempt_at"],
        suspend_at=suspend_at,
        paid_at=paid_at,
        invoice_id=invoice_id,
    )
    key = f"{kind}:{invoice_id}" + (f":{dedup_suffix}" if dedup_suffix else "")
    ids = notify.queue_emails(
        conn,
        c,
        [
            notify.EmailRequest(
                kind,
                key,
                cust,
                ctx,
                invoice_id=invoice_id,
                plan=sub["plan"],
                interval=sub["interval"],
            )
        ],
        now,
    )
    if ids:
        after_commit(conn, lambda: c.dispatcher.send_notifications(ids))
    return ids
