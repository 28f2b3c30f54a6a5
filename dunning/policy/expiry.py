"""Card-expiry reminders and token retention: pure dates from the policy's offsets."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from dunning.policy.timing import at_local, email_time, parse_clock, require_aware, zone
from dunning.policy.types import ExpiryReminder, PlanPolicy


def expiry_reminders(
    exp_month: int, exp_year: int, timezone: str, policy: PlanPolicy
) -> list[ExpiryReminder]:
    """When to remind about a card expiring at the end of ``exp_month``/``exp_year``.

    One reminder per offset, counted back from the last day of the expiry month, at the local
    morning, out of quiet hours; one that lands on the 1st of a month moves to the 2nd (users
    ask not to get it on the 1st, docs/declines-and-network-rules.md §5). Oldest first.
    """
    if not 1 <= exp_month <= 12:
        raise ValueError(f"exp_month must be 1-12, got {exp_month}")
    last_day = date(exp_year, exp_month, calendar.monthrange(exp_year, exp_month)[1])
    tz, clock = zone(timezone), parse_clock(policy.retry_local_time)
    reminders = []
    for offset in policy.expiry_reminder_days:
        day = last_day - timedelta(days=offset)
        if day.day == 1:
            day += timedelta(days=1)
        at = email_time(at_local(day, clock, tz), timezone, policy)
        reminders.append(ExpiryReminder(at=at, offset_label=f"{offset}d"))
    return sorted(reminders, key=lambda r: (r.at, r.offset_label))


def token_purge_due(last_payment_at: datetime | None, now: datetime, policy: PlanPolicy) -> bool:
    """Whether the retention period since the last successful payment has run out.

    Without a last payment there is nothing to count from: the caller passes the time the card
    was stored instead, or the token is kept.
    """
    require_aware(now, "now")
    if last_payment_at is None:
        return False
    require_aware(last_payment_at, "last_payment_at")
    return now >= last_payment_at + timedelta(days=policy.token_retention_days)
