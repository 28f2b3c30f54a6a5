"""The policy file's schema: every key required, unknown keys refused, each error named."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictBool
from pydantic_core import PydanticCustomError

from dunning.policy.paydays import valid_rule
from dunning.policy.types import PlanPolicy


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PydanticCustomError("positive_int", "must be a positive integer")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PydanticCustomError("count", "must be an integer, 0 or more")
    return value


def _hours(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PydanticCustomError("hours", "must be a number of hours, 0 or more")
    if not math.isfinite(value):
        raise PydanticCustomError("hours", "must be a finite number of hours")
    return float(value)


def _clock(value: Any) -> str:
    ok = isinstance(value, str) and len(value) == 5 and value[2] == ":"
    digits = value[:2] + value[3:] if ok else ""
    if not (ok and digits.isdigit() and int(digits[:2]) < 24 and int(digits[2:]) < 60):
        raise PydanticCustomError("clock", 'must be a local time "HH:MM", e.g. "09:00"')
    return str(value)


def _mac(value: Any) -> str:
    if not (isinstance(value, str) and len(value) == 2 and value.isdigit()):
        raise PydanticCustomError("mac", 'must be a two-digit Mastercard advice code, e.g. "02"')
    return value


def _payday(value: Any) -> int | str:
    if not valid_rule(value):
        raise PydanticCustomError("payday", 'must be a day of the month (1-31) or "last"')
    return value  # type: ignore[no-any-return]


def _country(value: Any) -> str:
    ok = isinstance(value, str) and (value == "default" or (len(value) == 2 and value.isupper()))
    if not ok:
        raise PydanticCustomError(
            "country", 'must be an ISO 3166 country code such as "DK", or "default"'
        )
    return str(value)


PositiveInt = Annotated[int, BeforeValidator(_positive_int)]
Count = Annotated[int, BeforeValidator(_count)]
Hours = Annotated[float, BeforeValidator(_hours)]
Clock = Annotated[str, BeforeValidator(_clock)]
Mac = Annotated[str, BeforeValidator(_mac)]
PayDay = Annotated[int | str, BeforeValidator(_payday)]
Country = Annotated[str, BeforeValidator(_country)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Retry(_Section):
    days: tuple[PositiveInt, ...]
    local_time: Clock
    weak_soft_max: Count
    switch_to_backup_card: StrictBool
    payday_shift_days: Count


class Emails(_Section):
    first_failure_delay_hours: Hours
    reminder_days: tuple[PositiveInt, ...]
    final_notice_day: PositiveInt


class Window(_Section):
    suspend_day: PositiveInt
    end_action: Literal["leave_open", "uncollectible"]


class QuietHours(_Section):
    start: Clock
    end: Clock


class Expiry(_Section):
    reminder_days: tuple[PositiveInt, ...]


class Retention(_Section):
    token_days: PositiveInt


class Visa(_Section):
    max_reattempts_30d: PositiveInt
    reattempt_window_days: PositiveInt
    transaction_window_days: PositiveInt


class Mastercard(_Section):
    max_attempts_24h: PositiveInt
    short_window_hours: PositiveInt
    max_attempts_30d: PositiveInt
    long_window_days: PositiveInt
    mac_delay_hours: dict[Mac, Hours]


class Limits(_Section):
    visa: Visa
    mastercard: Mastercard


class Declines(_Section):
    min_delay_hours: dict[str, Hours]


class PolicyModel(_Section):
    retry: Retry
    emails: Emails
    window: Window
    quiet_hours: QuietHours
    expiry: Expiry
    retention: Retention
    limits: Limits
    declines: Declines
    paydays: dict[Country, tuple[PayDay, ...]]


Loc = tuple[str | int, ...]


def _increasing(section: str, key: str, days: tuple[int, ...]) -> list[tuple[Loc, str]]:
    return [
        ((section, key, i), f"must be greater than the day before it ({days[i - 1]})")
        for i in range(1, len(days))
        if days[i] <= days[i - 1]
    ]


def _before(
    section: str, key: str, days: tuple[int, ...], name: str, limit: int
) -> list[tuple[Loc, str]]:
    return [
        ((section, key, i), f"must be before {name} ({limit})")
        for i, day in enumerate(days)
        if day >= limit
    ]


def cross_checks(m: PolicyModel) -> list[tuple[Loc, str]]:
    """Problems between keys, as ``(key location, problem)``: the order of the dunning days."""
    suspend, notice = m.window.suspend_day, m.emails.final_notice_day
    problems = _increasing("retry", "days", m.retry.days)
    problems += _before("retry", "days", m.retry.days, "window.suspend_day", suspend)
    problems += _increasing("emails", "reminder_days", m.emails.reminder_days)
    problems += _before(
        "emails", "reminder_days", m.emails.reminder_days, "emails.final_notice_day", notice
    )
    if notice >= suspend:
        problems.append(
            (("emails", "final_notice_day"), f"must be before window.suspend_day ({suspend})")
        )
    problems += [
        (("expiry", "reminder_days", i), "must not repeat a day")
        for i, day in enumerate(m.expiry.reminder_days)
        if day in m.expiry.reminder_days[:i]
    ]
    return problems


def to_plan_policy(m: PolicyModel) -> PlanPolicy:
    """The flat value type the pure policy functions take."""
    return PlanPolicy(
        retry_days=m.retry.days,
        retry_local_time=m.retry.local_time,
        weak_soft_max_retries=m.retry.weak_soft_max,
        reminder_days=m.emails.reminder_days,
        final_notice_day=m.emails.final_notice_day,
        suspend_day=m.window.suspend_day,
        end_action=m.window.end_action,
        switch_to_backup_card=m.retry.switch_to_backup_card,
        quiet_start=m.quiet_hours.start,
        quiet_end=m.quiet_hours.end,
        expiry_reminder_days=m.expiry.reminder_days,
        token_retention_days=m.retention.token_days,
        visa_max_reattempts_30d=m.limits.visa.max_reattempts_30d,
        visa_transaction_window_days=m.limits.visa.transaction_window_days,
        mc_max_attempts_24h=m.limits.mastercard.max_attempts_24h,
        mc_max_attempts_30d=m.limits.mastercard.max_attempts_30d,
        first_failure_email_delay_s=m.emails.first_failure_delay_hours * 3600.0,
        visa_reattempt_window_days=m.limits.visa.reattempt_window_days,
        mc_short_window_hours=m.limits.mastercard.short_window_hours,
        mc_long_window_days=m.limits.mastercard.long_window_days,
        mac_delay_hours=dict(m.limits.mastercard.mac_delay_hours),
        decline_min_delay_hours=dict(m.declines.min_delay_hours),
        payday_shift_days=m.retry.payday_shift_days,
        paydays=dict(m.paydays),
    )
