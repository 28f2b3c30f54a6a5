"""Pay days: the calendar rules, the country of a time zone, and retries moved onto pay days."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from dunning.policy.days import retry_slots, window_end
from dunning.policy.paydays import (
    country_of,
    days_since_payday,
    next_payday,
    pay_dates,
    valid_rule,
)
from dunning.policy.types import PlanPolicy

RULES = st.lists(st.one_of(st.integers(1, 31), st.just("last")), min_size=1, max_size=3)
DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))


def test_a_pay_day_on_a_weekend_moves_to_the_friday_before() -> None:
    # January 2026 ends on a Saturday; 15 February 2026 is a Sunday.
    assert pay_dates(2026, 1, ["last"]) == (date(2026, 1, 30),)
    assert pay_dates(2026, 2, [15, "last"]) == (date(2026, 2, 13), date(2026, 2, 27))
    assert pay_dates(2026, 2, [31]) == (date(2026, 2, 27),)  # past the end: the last day


def test_the_country_comes_from_the_time_zone() -> None:
    assert country_of("Europe/Copenhagen") == "DK"
    assert country_of("America/Los_Angeles") == "US"
    assert country_of("UTC") == ""
    assert country_of("Etc/GMT+2") == ""
    assert country_of("Not/A_Zone") == ""


def test_rules_are_days_of_the_month_or_last() -> None:
    assert all(valid_rule(r) for r in (1, 15, 31, "last"))
    assert not any(valid_rule(r) for r in (0, 32, "first", True, 1.5, None))


@given(DAYS, RULES)
def test_pay_days_are_weekdays_found_on_both_sides(day: date, rules: list[int | str]) -> None:
    after = next_payday(day, rules)
    since = days_since_payday(day, rules)
    assert after is not None
    assert after >= day
    assert after.weekday() < 5
    assert after - day <= timedelta(days=34)  # a month, and a weekend moved back
    assert since is not None
    assert 0 <= since <= 40
    assert (since == 0) == (after == day)


def _policy(**kw: object) -> PlanPolicy:
    return replace(PlanPolicy(), **kw)  # type: ignore[arg-type]


def test_retries_move_onto_the_next_pay_day_within_the_shift() -> None:
    failed = datetime(2026, 1, 27, 8, 0, tzinfo=UTC)  # a Tuesday
    policy = _policy(retry_days=(1, 3, 5, 8), payday_shift_days=3)
    slots = retry_slots(failed, "Europe/Copenhagen", policy)
    local = [s.astimezone(ZoneInfo("Europe/Copenhagen")) for s in slots]
    # Day 1 (28 Jan) would move to Friday 30 Jan, the last weekday, but day 3 is that day: it
    # stays. Day 3 is on the pay day; day 5 (1 Feb) and day 8 (4 Feb) have none within three.
    want = [date(2026, 1, 28), date(2026, 1, 30), date(2026, 2, 1), date(2026, 2, 4)]
    assert [d.date() for d in local] == want
    assert local[0].hour == 9
    moved = retry_slots(failed, "Europe/Copenhagen", replace(policy, retry_days=(1, 5, 8)))
    assert [s.astimezone(ZoneInfo("Europe/Copenhagen")).date() for s in moved] == [
        date(2026, 1, 30), date(2026, 2, 1), date(2026, 2, 4)
    ]  # fmt: skip


def test_a_retry_does_not_jump_past_the_next_one_or_the_window() -> None:
    failed = datetime(2026, 1, 25, 8, 0, tzinfo=UTC)
    policy = _policy(retry_days=(1, 2, 3), payday_shift_days=10, suspend_day=4,
                     final_notice_day=3, reminder_days=(2,))  # fmt: skip
    plain = retry_slots(failed, "Europe/Copenhagen", replace(policy, payday_shift_days=0))
    # Pay day 30 January is past day 4: nothing may move.
    assert retry_slots(failed, "Europe/Copenhagen", policy) == plain


@given(
    st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(0, 10),
    st.sampled_from(["Europe/Copenhagen", "America/New_York", "Europe/Stockholm", "UTC"]),
)
def test_moved_retries_stay_ordered_and_inside_the_window(
    failed: datetime, shift: int, zone_name: str
) -> None:
    policy = _policy(payday_shift_days=shift)
    plain = retry_slots(failed, zone_name, replace(policy, payday_shift_days=0))
    slots = retry_slots(failed, zone_name, policy)
    end = window_end(failed, zone_name, policy)
    assert len(slots) == len(plain)
    assert all(a <= b for a, b in itertools.pairwise(slots))
    assert all(p <= s < end for p, s in zip(plain, slots, strict=True))
    assert all(s - p <= timedelta(days=shift, hours=2) for p, s in zip(plain, slots, strict=True))
