"""Dunning days: "day N" is N calendar days after the first failure, in the customer's zone,
at the policy's local time. The window ends at the suspension: no retry at or after it."""

from __future__ import annotations

from datetime import datetime

from dunning.policy.timing import day_at, local_date, parse_clock, require_aware, zone
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
    return [dunning_day(first_failed_at, timezone, policy, d) for d in policy.retry_days]
