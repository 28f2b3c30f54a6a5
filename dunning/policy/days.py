"""Dunning days: "day N" is N calendar days after the first failure, in the customer's zone,
at the policy's local time. The window ends at the suspension: no retry at or after it.

With ``retry.payday_shift_days`` set, a scheduled retry moves forward by up to that many days
to land on one of the customer's pay days (``[paydays]``, by the country of their time zone),
as long as it stays before the next scheduled retry and inside the window."""

from __future__ import annotations

from datetime import datetime, timedelta

from dunning.policy.paydays import country_of, next_payday, rules_for
from dunning.policy.timing import at_local, day_at, local_date, parse_clock, require_aware, zone
from dunning.policy.types import PlanPolicy


def dunning_day(
    first_failed_at: datetime, timezone: str, policy: PlanPolicy, days: int
) -> datetime:
    """Day ``days`` of the dunning window at the policy's local time (UTC)."""
    require_aware(first_failed_at, "first_failed_at")
    tz = zone(timezone)
    start = local_date(first_failed_at, tz)
    return day_at(start, days, parse_clock(policy.retry_local_time), tz)


def window_end(first_failed_at: datetime, timezone: str, policy: PlanPolicy) -> datetime:
    """The suspension time: ``suspend_day`` at the local time (UTC)."""
    return dunning_day(first_failed_at, timezone, policy, policy.suspend_day)


def retry_slots(first_failed_at: datetime, timezone: str, policy: PlanPolicy) -> list[datetime]:
    """The scheduled merchant retries, one per ``retry_days`` entry, in time order (UTC)."""
    slots = [dunning_day(first_failed_at, timezone, policy, d) for d in policy.retry_days]
    if policy.payday_shift_days <= 0 or not slots:
        return slots
    return _on_paydays(slots, timezone, window_end(first_failed_at, timezone, policy), policy)


def _on_paydays(
    slots: list[datetime], timezone: str, end: datetime, policy: PlanPolicy
) -> list[datetime]:
    """Each slot moved to the first pay day within ``payday_shift_days`` after it, unless that
    would reach the next slot or the end of the window."""
    tz = zone(timezone)
    clock = parse_clock(policy.retry_local_time)
    rules = rules_for(policy.paydays, country_of(timezone))
    moved = []
    for i, slot in enumerate(slots):
        day = local_date(slot, tz)
        paid = next_payday(day, rules)
        limit = slots[i + 1] if i + 1 < len(slots) else end
        if paid is not None and paid - day <= timedelta(days=policy.payday_shift_days):
            shifted = at_local(paid, clock, tz)
            if shifted < limit:
                slot = shifted
        moved.append(slot)
    return moved
