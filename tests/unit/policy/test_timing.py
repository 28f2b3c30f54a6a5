"""Quiet hours, local mornings across DST, expiry reminders and token retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dunning.policy.expiry import expiry_reminders, token_purge_due
from dunning.policy.timing import email_time, next_local, parse_clock, zone
from dunning.policy.types import PlanPolicy

POLICY = PlanPolicy()
CPH = "Europe/Copenhagen"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 1, 10, 12, 0), utc(2026, 1, 10, 12, 0)),  # 13:00 local: sent at once
        (utc(2026, 1, 10, 19, 59), utc(2026, 1, 10, 19, 59)),  # 20:59 local
        (utc(2026, 1, 10, 20, 0), utc(2026, 1, 11, 7, 0)),  # 21:00 local: next 08:00
        (utc(2026, 1, 10, 23, 30), utc(2026, 1, 11, 7, 0)),  # 00:30 local, after midnight
        (utc(2026, 1, 11, 6, 59), utc(2026, 1, 11, 7, 0)),  # 07:59 local
        (utc(2026, 1, 11, 7, 0), utc(2026, 1, 11, 7, 0)),  # 08:00 local: quiet hours over
        (utc(2026, 7, 10, 19, 30), utc(2026, 7, 11, 6, 0)),  # summer: 21:30 CEST -> 08:00 CEST
    ],
)
def test_emails_wait_for_the_end_of_quiet_hours(at: datetime, expected: datetime) -> None:
    assert email_time(at, CPH, POLICY) == expected


def test_quiet_hours_across_the_spring_forward_night() -> None:
    # 2026-03-29 02:00 CET jumps to 03:00 CEST; 08:00 CEST is 06:00 UTC.
    assert email_time(utc(2026, 3, 28, 23, 0), CPH, POLICY) == utc(2026, 3, 29, 6, 0)


def test_quiet_hours_across_the_fall_back_night() -> None:
    # 2026-11-01 in New York: 02:00 EDT goes back to 01:00 EST; 08:00 EST is 13:00 UTC.
    assert email_time(utc(2026, 11, 1, 5, 30), "America/New_York", POLICY) == utc(
        2026, 11, 1, 13, 0
    )


def test_quiet_hours_inside_one_day() -> None:
    policy = PlanPolicy(quiet_start="01:00", quiet_end="06:00")
    assert email_time(utc(2026, 1, 10, 2, 0), "UTC", policy) == utc(2026, 1, 10, 6, 0)
    assert email_time(utc(2026, 1, 10, 23, 0), "UTC", policy) == utc(2026, 1, 10, 23, 0)


def test_equal_ends_mean_no_quiet_hours() -> None:
    policy = PlanPolicy(quiet_start="00:00", quiet_end="00:00")
    assert email_time(utc(2026, 1, 10, 3, 0), "UTC", policy) == utc(2026, 1, 10, 3, 0)


@pytest.mark.parametrize("name", ["", "Not/AZone", "../etc/passwd", "America"])
def test_a_missing_or_unknown_zone_is_utc(name: str) -> None:
    assert zone(name).key == "UTC"
    assert email_time(utc(2026, 1, 10, 22, 0), name, POLICY) == utc(2026, 1, 11, 8, 0)


def test_results_are_utc_whatever_the_input_zone() -> None:
    at = datetime(2026, 1, 10, 22, 0, tzinfo=zone("Asia/Tokyo"))  # 14:00 in Copenhagen
    result = email_time(at, CPH, POLICY)
    assert result.tzinfo is UTC
    assert result == at


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        email_time(datetime(2026, 1, 1, 12), CPH, POLICY)


def test_next_local_morning_is_the_same_wall_time_across_dst() -> None:
    nine = parse_clock("09:00")
    before = next_local(utc(2026, 3, 28, 9, 0), nine, zone(CPH))  # after 09:00 CET on the 28th
    assert before == utc(2026, 3, 29, 7, 0)  # 09:00 CEST the next day
    assert next_local(utc(2026, 3, 29, 7, 0), nine, zone(CPH)) == utc(2026, 3, 29, 7, 0)


def test_a_wall_time_in_a_dst_gap_moves_forward() -> None:
    # 02:30 does not exist in Copenhagen on 2026-03-29: it becomes 03:30 CEST.
    assert next_local(utc(2026, 3, 28, 23, 0), parse_clock("02:30"), zone(CPH)) == utc(
        2026, 3, 29, 1, 30
    )


@pytest.mark.parametrize("text", ["9:00", "0900", "ab:cd", "09:0"])
def test_clock_texts_must_be_hh_mm(text: str) -> None:
    with pytest.raises(ValueError, match="is not a HH:MM time"):
        parse_clock(text)


@pytest.mark.parametrize(
    ("month", "year", "dates"),
    [
        (3, 2026, [(3, 2), (3, 24)]),  # 31-day month: 30 days before the 31st is the 1st -> 2nd
        (2, 2026, [(1, 29), (2, 21)]),
        (2, 2028, [(1, 30), (2, 22)]),  # leap year
        (4, 2026, [(3, 31), (4, 23)]),
        (1, 2027, [(1, 2), (1, 24)]),
    ],
)
def test_expiry_reminders_before_the_end_of_the_month(
    month: int, year: int, dates: list[tuple[int, int]]
) -> None:
    reminders = expiry_reminders(month, year, CPH, POLICY)
    assert [r.offset_label for r in reminders] == ["30d", "7d"]
    local = [r.at.astimezone(zone(CPH)) for r in reminders]
    assert [(t.month, t.day) for t in local] == dates
    assert all((t.hour, t.minute) == (9, 0) for t in local)
    assert all(r.at.tzinfo is UTC for r in reminders)


def test_a_reminder_on_the_seventh_moves_only_off_the_first() -> None:
    policy = PlanPolicy(expiry_reminder_days=(29,))  # 29 days before 30 April is 1 April
    (only,) = expiry_reminders(4, 2026, "UTC", policy)
    assert (only.at.month, only.at.day) == (4, 2)


def test_expiry_reminders_respect_quiet_hours() -> None:
    policy = PlanPolicy(retry_local_time="22:00")
    reminders = expiry_reminders(6, 2026, "UTC", policy)
    assert all((r.at.hour, r.at.minute) == (8, 0) for r in reminders)


def test_expiry_month_must_be_a_month() -> None:
    with pytest.raises(ValueError, match="exp_month"):
        expiry_reminders(13, 2026, CPH, POLICY)


def test_token_purge_after_the_retention_period() -> None:
    last = utc(2024, 1, 1, 12, 0)
    assert not token_purge_due(last, last + timedelta(days=730) - timedelta(seconds=1), POLICY)
    assert token_purge_due(last, last + timedelta(days=730), POLICY)
    assert token_purge_due(last, last + timedelta(days=31), PlanPolicy(token_retention_days=30))


def test_no_last_payment_keeps_the_token() -> None:
    assert not token_purge_due(None, utc(2030, 1, 1), POLICY)
