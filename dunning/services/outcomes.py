"""What a charge's answer does to the invoice, subscription, card and outbox.

Every function runs inside the caller's transaction and re-reads what it changes; applying the
same answer twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, Table, bindparam, select, tuple_, update

from dunning.bootstrap import Container
from dunning.errors import NotFound
from dunning.gateways.base import ChargeResult
from dunning.model import InvoiceStatus, SubscriptionStatus, allowed_sources
from dunning.ops.counters import count_charges
from dunning.policy.declines import classify
from dunning.policy.schedule import dunning_steps, next_retry
from dunning.policy.types import Classification, LimitCheck, RetryDecision, RetryState, Verdict
from dunning.services import notify, outbound
from dunning.services.audit import audit_row, record, record_many
from dunning.store import queries
from dunning.store.tables import (
    customers,
    invoices,
    notifications,
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


def _attempt_audit(
    att: RowMapping,
    result: str,
    now: datetime,
    cls: Classification | None = None,
    **codes: Any,
) -> dict[str, Any]:
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
        decline_class=cls.decline_class if cls else None,
        amount=att["amount"],
        currency=att["currency"],
        **codes,
    )


def _audit_attempt(
    conn: Connection,
    att: RowMapping,
    result: str,
    now: datetime,
    cls: Classification | None = None,
    **codes: Any,
) -> None:
    record_many(conn, [_attempt_audit(att, result, now, cls, **codes)])


def apply_result(
    conn: Connection, c: Container, key: str, result: ChargeResult, now: datetime
) -> None:
    """Record the gateway's answer for attempt ``key`` and act on it."""
    apply_results(conn, c, [(key, result)], now)


def apply_results(
    conn: Connection, c: Container, answers: Sequence[tuple[str, ChargeResult]], now: datetime
) -> None:
    """:func:`apply_result` for several answers, in order; successes are written set-based."""
    if not answers:
        return
    keys = [key for key, _ in answers]
    atts = {
        r["idempotency_key"]: r
        for r in conn.execute(
            select(payment_attempts).where(payment_attempts.c.idempotency_key.in_(keys))
        ).mappings()
    }
    paid: list[tuple[RowMapping, ChargeResult]] = []
    for key, result in answers:
        att = atts.pop(key, None)  # a key given twice is applied once
        if att is None or att["status"] not in UNRESOLVED:
            continue
        if result.succeeded:
            paid.append((att, result))
            continue
        _apply_successes(conn, c, paid, now)  # keep the answers' order
        paid = []
        _apply_decline(conn, c, att, result, now)
    _apply_successes(conn, c, paid, now)


def _apply_successes(
    conn: Connection, c: Container, paid: list[tuple[RowMapping, ChargeResult]], now: datetime
) -> None:
    if not paid:
        return
    conn.execute(
        update(payment_attempts)
        .where(payment_attempts.c.id == bindparam("att_id"))
        .values(status="succeeded", gateway_charge_id=bindparam("charge_id"), resolved_at=now),
        [{"att_id": att["id"], "charge_id": result.charge_id} for att, result in paid],
    )
    no_codes = dict.fromkeys(("decline_code", "network_code", "advice_code", "network_advice_code"))
    record_many(conn, [_attempt_audit(att, "succeeded", now, **no_codes) for att, _ in paid])
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
    settle_paid_many(conn, c, [(att["invoice_id"], att["initiator"]) for att, _ in paid], now)


def _apply_decline(
    conn: Connection, c: Container, att: RowMapping, result: ChargeResult, now: datetime
) -> None:
    key = att["idempotency_key"]
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
        count_charges(conn, [("unknown", cls.decline_class, att["amount"], att["currency"])])
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
    count_charges(conn, [("declined", cls.decline_class, att["amount"], att["currency"])])
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
    return bool(settle_paid_many(conn, c, [(invoice_id, source)], now))


def settle_paid_many(
    conn: Connection, c: Container, items: Sequence[tuple[str, str]], now: datetime
) -> set[str]:
    """:func:`settle_paid` for ``(invoice_id, source)`` pairs, set-based; returns the ids of the
    invoices this call marked paid."""
    invs = _by_id(conn, invoices, [i for i, _ in items])
    sources = dict(items)
    allowed = allowed_sources(InvoiceStatus.paid)
    todo = [invs[i] for i in sources if invs[i]["status"] in allowed]
    if not todo:
        return set()
    changed = set(
        conn.execute(
            update(invoices)
            .where(
                tuple_(invoices.c.id, invoices.c.status).in_([(i["id"], i["status"]) for i in todo])
            )
            .values(
                status="paid",
                paid_at=now,
                next_attempt_at=None,
                next_step_at=None,
                retry_claimed_until=None,
                step_claimed_until=None,
                updated_at=now,
            )
            .returning(invoices.c.id)
        ).scalars()
    )
    settled = [inv for inv in todo if inv["id"] in changed]
    if not settled:
        return set()
    record_many(
        conn,
        [
            audit_row(
                "invoice_status",
                now,
                invoice_id=inv["id"],
                customer_id=inv["customer_id"],
                reason=sources[inv["id"]],
                **{"from": inv["status"], "to": "paid"},
            )
            for inv in settled
        ],
    )
    subs = _by_id(conn, subscriptions, [inv["subscription_id"] for inv in settled])
    set_subscriptions_status(
        conn, list(subs.values()), SubscriptionStatus.active, now, reason="paid"
    )
    conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id.in_(list(subs)))
        .values(last_payment_at=now, updated_at=now)
    )
    conn.execute(
        update(customers)
        .where(customers.c.id.in_({inv["customer_id"] for inv in settled}))
        .values(last_payment_at=now, updated_at=now)
    )
    # notify.cancel_pending for every settled invoice, in one statement: nothing unsent may nag.
    conn.execute(
        update(notifications)
        .where(notifications.c.status == "pending", notifications.c.invoice_id.in_(list(changed)))
        .values(status="cancelled")
    )
    recovered = [inv for inv in settled if inv["first_failed_at"] is not None]
    queue_invoice_emails(
        conn, c, "payment_recovered", [i["id"] for i in recovered], now, paid_at=now
    )
    outbound.invoice_events(
        conn,
        "invoice.recovered",
        recovered,
        now,
        per_invoice={inv["id"]: {"source": sources[inv["id"]]} for inv in recovered},
        status="paid",
    )
    return changed


def _by_id(conn: Connection, table: Table, ids: Sequence[str]) -> dict[str, RowMapping]:
    """The rows with ``ids``; :class:`NotFound` names the first one missing."""
    rows = {
        r["id"]: r for r in conn.execute(select(table).where(table.c.id.in_(set(ids)))).mappings()
    }
    for key in ids:
        if key not in rows:
            raise NotFound(f"{table.name} {key!r} does not exist")
    return rows


def set_subscription_status(
    conn: Connection, sub: RowMapping, target: SubscriptionStatus, now: datetime, *, reason: str
) -> bool:
    """Move a subscription along the lifecycle; a move the lifecycle forbids is skipped."""
    return bool(set_subscriptions_status(conn, [sub], target, now, reason=reason))


def set_subscriptions_status(
    conn: Connection,
    subs: Sequence[RowMapping],
    target: SubscriptionStatus,
    now: datetime,
    *,
    reason: str,
) -> set[str]:
    """:func:`set_subscription_status` for several subscriptions; returns the ids it moved."""
    movable = [s for s in subs if s["status"] != target and s["status"] in allowed_sources(target)]
    if not movable:
        return set()
    extra: dict[str, Any] = {}
    if target is SubscriptionStatus.suspended:
        extra["suspended_at"] = now
    if target is SubscriptionStatus.cancelled:
        extra["cancelled_at"] = now
    changed = set(
        conn.execute(
            update(subscriptions)
            .where(
                tuple_(subscriptions.c.id, subscriptions.c.status).in_(
                    [(s["id"], s["status"]) for s in movable]
                )
            )
            .values(status=target.value, updated_at=now, **extra)
            .returning(subscriptions.c.id)
        ).scalars()
    )
    moved = [s for s in movable if s["id"] in changed]
    record_many(
        conn,
        [
            audit_row(
                "subscription_status",
                now,
                subscription_id=sub["id"],
                customer_id=sub["customer_id"],
                reason=reason,
                **{"from": sub["status"], "to": target.value},
            )
            for sub in moved
        ],
    )
    outbound.subscriptions_status_changed(conn, moved, target.value, now)
    return changed


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


def mark_not_charged(
    conn: Connection, c: Container, key: str, now: datetime, *, sent_at: datetime | None = None
) -> bool:
    """The look-up found no charge: the attempt never happened; retry soon with a new key.

    ``sent_at`` is the attempt's ``created_at`` the look-up was made for: if the attempt was
    sent since (a batch stamps each attempt as it sends it), the look-up proves nothing and
    nothing changes. Returns whether the attempt was marked.
    """
    att = _attempt(conn, key)
    if att is None or att["status"] not in UNRESOLVED:
        return False
    stmt = update(payment_attempts).where(
        payment_attempts.c.id == att["id"], payment_attempts.c.status.in_(UNRESOLVED)
    )
    if sent_at is not None:
        stmt = stmt.where(payment_attempts.c.created_at == sent_at)
    if conn.execute(stmt.values(status="not_charged", resolved_at=now)).rowcount != 1:
        return False
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
    return True


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
    return queue_invoice_emails(
        conn,
        c,
        kind,
        [invoice_id],
        now,
        dedup_suffix=dedup_suffix,
        next_attempt_at=next_attempt_at,
        paid_at=paid_at,
    )


def queue_invoice_emails(
    conn: Connection,
    c: Container,
    kind: str,
    invoice_ids: Sequence[str],
    now: datetime,
    *,
    dedup_suffix: str = "",
    next_attempt_at: datetime | None = None,
    paid_at: datetime | None = None,
) -> list[int]:
    """:func:`queue_invoice_email` for several invoices, reading their rows set-based."""
    if not invoice_ids:
        return []
    invs = _by_id(conn, invoices, invoice_ids)
    subs = _by_id(conn, subscriptions, [inv["subscription_id"] for inv in invs.values()])
    custs = _by_id(conn, customers, [inv["customer_id"] for inv in invs.values()])
    card_ids = [s["payment_method_id"] for s in subs.values() if s["payment_method_id"]]
    cards = (
        {
            r["id"]: r
            for r in conn.execute(
                select(payment_methods).where(payment_methods.c.id.in_(card_ids))
            ).mappings()
        }
        if card_ids
        else {}
    )
    requests = []
    for invoice_id in invoice_ids:
        inv = invs[invoice_id]
        sub = subs[inv["subscription_id"]]
        cust = custs[inv["customer_id"]]
        card = cards.get(sub["payment_method_id"] or "")
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
        requests.append(
            notify.EmailRequest(
                kind,
                key,
                cust,
                ctx,
                invoice_id=invoice_id,
                plan=sub["plan"],
                interval=sub["interval"],
            )
        )
    ids = notify.queue_emails(conn, c, requests, now)
    if ids:
        after_commit(conn, lambda: c.dispatcher.send_notifications(ids))
    return ids
