"""Card-expiry reminders: for cards backing an active subscription whose next charge falls
after the card expires. The dedup key ``card_expiring:<card>:<yyyy-mm>:<offset>`` keeps each
reminder to one, and the SQL that finds candidates mirrors it."""

from __future__ import annotations

from calendar import monthrange
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, tuple_

from dunning.policy.expiry import expiry_reminders
from dunning.ports import Pipeline
from dunning.services import notify, outbound
from dunning.store.tables import customers, payment_methods, subscriptions
from dunning.store.uow import after_commit, transaction

# A reminder found later than this after its time is skipped: the next offset covers it.
STALE_AFTER = timedelta(days=2)


def _lookahead(c: Pipeline) -> timedelta:
    """How far ahead a scan queues reminders: until the next scan. The scan runs once per
    interval (daily) at whatever hour the scheduler started; a reminder is held in the outbox
    until its local morning instead of going out up to a day late, or on the 1st."""
    return timedelta(seconds=c.settings.timing.expiry_scan_interval_s)


def _months_ahead(now: datetime, months: int) -> list[tuple[int, int]]:
    y, m = now.year, now.month
    out = []
    for _ in range(months + 1):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _candidates(now: datetime, horizon_days: int) -> Select[Any]:
    """Active cards backing an active subscription that expire within the horizon."""
    months = _months_ahead(now, horizon_days // 28 + 2)
    return (
        select(
            payment_methods,
            customers.c.email,
            customers.c.name,
            customers.c.locale,
            customers.c.timezone,
            customers.c.billing_emails,
            customers.c.card_generation,
            subscriptions.c.plan,
            subscriptions.c.interval,
            subscriptions.c.amount,
            subscriptions.c.currency,
            subscriptions.c.current_period_end,
        )
        .join(subscriptions, subscriptions.c.payment_method_id == payment_methods.c.id)
        .join(customers, customers.c.id == payment_methods.c.customer_id)
        .where(
            payment_methods.c.status == "active",
            tuple_(payment_methods.c.exp_year, payment_methods.c.exp_month).in_(months),
            subscriptions.c.status == "active",
        )
    )


def _request(
    c: Pipeline, row: Any, key: str, last_day: date, at: datetime, now: datetime
) -> notify.EmailRequest:
    """The reminder email for one card, held until ``at``."""
    cust = {
        "id": row["customer_id"],
        "email": row["email"],
        "name": row["name"],
        "locale": row["locale"],
        "timezone": row["timezone"] or "UTC",
        "billing_emails": row["billing_emails"],
        "card_generation": row["card_generation"],
    }
    ctx = notify.context(
        cust,
        plan=notify.plan_name(c, row["plan"]),
        amount=row["amount"],
        currency=row["currency"],
        card=row,
        update_link=notify.link_for(c, cust, "update_card", now),
        expires_on=last_day.isoformat(),
    )
    return notify.EmailRequest(
        "card_expiring",
        key,
        cust,
        ctx,
        payment_method_id=row["id"],
        plan=row["plan"],
        interval=row["interval"],
        not_before=at,
    )


def _reminders_due(c: Pipeline, rows: Any, now: datetime) -> list[notify.EmailRequest]:
    """One request per reminder that falls between a stale one and the next scan."""
    ahead = _lookahead(c)
    requests: dict[str, notify.EmailRequest] = {}
    for row in rows:
        exp_year, exp_month = row["exp_year"], row["exp_month"]
        last_day = date(exp_year, exp_month, monthrange(exp_year, exp_month)[1])
        next_charge = row["current_period_end"]
        if next_charge is not None and next_charge.date() <= last_day:
            continue  # the next charge happens while the card is still valid
        policy = c.policy.for_plan(row["plan"], row["interval"])
        tz = row["timezone"] or "UTC"
        for reminder in expiry_reminders(exp_month, exp_year, tz, policy):
            if not (now - STALE_AFTER < reminder.at < now + ahead):
                continue
            key = (
                f"card_expiring:{row['id']}:{exp_year:04d}-{exp_month:02d}:{reminder.offset_label}"
            )
            if key not in requests:
                requests[key] = _request(c, row, key, last_day, reminder.at, now)
    return list(requests.values())


def queue_expiry_reminders(c: Pipeline, now: datetime) -> int:
    """Queue the reminders that are due now; returns how many were newly queued."""
    horizon_days = max(c.policy.for_plan("default", "month").expiry_reminder_days or (0,))
    with transaction(c.engine) as conn:
        requests = _reminders_due(c, conn.execute(_candidates(now, horizon_days)).mappings(), now)
        ids = notify.queue_emails(conn, c, requests, now) if requests else []
        outbound.cards_expiring(conn, ids, now)
        if ids:
            after_commit(conn, lambda: c.dispatcher.send_notifications(ids))
    return len(ids)
