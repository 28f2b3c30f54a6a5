"""Customer-local time for the policy: zones, local mornings, quiet hours. Results are UTC.

Wall times are turned into instants with ``fold=0``: an ambiguous wall time (the repeated hour
when clocks go back) means its first occurrence, and a wall time inside a spring-forward gap
moves forward by the length of the gap, so a local morning always exists.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dunning.policy.types import PlanPolicy

logger = logging.getLogger(__name__)

_UTC_ZONE = ZoneInfo("UTC")


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; an empty or unknown name means UTC."""
    if not name:
        return _UTC_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # A customer's zone comes from their browser or an import: a bad one must not stop
        # their dunning, so it falls back to UTC, as the policy file says.
        logger.warning("unknown time zone %r, using UTC", name)
        return _UTC_ZONE


@lru_cache(maxsize=64)
def parse_clock(text: str) -> time:
    """``"HH:MM"`` as a :class:`time`; raises ``ValueError`` for anything else."""
    hours, sep, minutes = text.partition(":")
    if not (sep and len(hours) == 2 and len(minutes) == 2 and (hours + minutes).isdigit()):
        raise ValueError(f"{text!r} is not a HH:MM time")
    return time(int(hours), int(minutes))


def require_aware(at: datetime, name: str) -> None:
    """Raise ``ValueError`` when ``at`` is naive: the policy only does timezone-aware maths."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {at!r}")


def local_date(at: datetime, tz: ZoneInfo) -> date:
    """The calendar date of instant ``at`` in zone ``tz``."""
    return at.astimezone(tz).date()


def at_local(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The instant (UTC) at which the wall clock in ``tz`` shows ``clock`` on ``day``."""
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def day_at(start: date, days: int, clock: time, tz: ZoneInfo) -> datetime:
    """``clock`` local time, ``days`` calendar days after ``start`` (DST-safe)."""
    return at_local(start + timedelta(days=days), clock, tz)


def next_local(at: datetime, clock: time, tz: ZoneInfo) -> datetime:
    """The first instant at or after ``at`` whose local wall time is ``clock`` (UTC)."""
    require_aware(at, "at")
    today = local_date(at, tz)
    candidate = at_local(today, clock, tz)
    if candidate >= at:
        return candidate
    return at_local(today + timedelta(days=1), clock, tz)


def in_quiet_hours(at: datetime, tz: ZoneInfo, policy: PlanPolicy) -> bool:
    """Whether ``at`` falls inside the quiet hours ``[start, end)`` of the local day."""
    start, end = parse_clock(policy.quiet_start), parse_clock(policy.quiet_end)
    if start == end:
        return False  # equal ends mean no quiet hours
    wall = at.astimezone(tz).time().replace(tzinfo=None)
    if start < end:
        return start <= wall < end
    return wall >= start or wall < end


def email_time(at: datetime, timezone: str, policy: PlanPolicy) -> datetime:
    """``at``, or the end of the customer's quiet hours when ``at`` falls in them (UTC)."""
    require_aware(at, "at")
    tz = zone(timezone)
    if not in_quiet_hours(at, tz, policy):
        return at.astimezone(UTC)
    start, end = parse_clock(policy.quiet_start), parse_clock(policy.quiet_end)
    local = at.astimezone(tz)
    wall = local.time().replace(tzinfo=None)
    end_day = local.date()
    if start > end and wall >= start:
        end_day += timedelta(days=1)  # the quiet hours run past midnight
    return max(at_local(end_day, end, tz), at.astimezone(UTC))
