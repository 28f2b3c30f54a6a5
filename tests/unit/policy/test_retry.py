"""next_retry and dunning_steps: the schedule, its stops and its reasons, as given/when/then."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import DEFAULT_POLICY_FILE
from dunning.policy.schedule import dunning_steps, next_retry
from dunning.policy.types import AttemptRecord, PlanPolicy
from dunning.policy_file import load_policy_book
from tests.unit.policy.builders import T0, attempt, state

POLICY = PlanPolicy()
H, D = timedelta(hours=1), timedelta(days=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_first_retry_is_day_1_at_the_customers_morning() -> None:
    d = next_retry(state((attempt(T0),)), T0, POLICY)
    assert (d.action, d.reason, d.payment_method_id) == ("retry", "soft_decline", "pm_1")
    assert d.at == utc(2026, 1, 2, 8, 0)  # 09:00 in Copenhagen
    assert d.decline_class == "visa_cat2"
    assert d.message


def test_the_schedule_runs_1_3_5_7_then_stops() -> None:
    attempts: tuple[AttemptRecord, ...] = (attempt(T0),)
    seen = []
    now = T0
    while True:
        d = next_retry(state(attempts), now, POLICY)
        if d.action == "stop":
            break
        assert d.at is not None
        seen.append(d.at)
        attempts += (attempt(d.at),)
        now = d.at + timedelta(minutes=1)
    assert [t.day for t in seen] == [2, 4, 6, 8]
    assert d.reason == "schedule_exhausted"


def test_customer_attempts_do_not_use_up_scheduled_tries() -> None:
    attempts = (attempt(T0), attempt(T0 + 2 * H, initiator="customer"))
    d = next_retry(state(attempts), T0 + 2 * H, POLICY)
    assert d.at == utc(2026, 1, 2, 8, 0)


def test_customer_attempts_count_for_the_network_limits() -> None:
    customer = tuple(
        attempt(T0 + i * timedelta(minutes=10), initiator="customer", network="mastercard")
        for i in range(1, 10)
    )
    attempts = (attempt(T0, network="mastercard"), *customer)
    s = state(attempts, network="mastercard", customer_timezone="UTC")
    d = next_retry(s, T0 + 2 * H, replace(POLICY, retry_days=(1, 3), retry_local_time="00:00"))
    # Ten attempts in the last 24 h: day 1 00:00 is too early; the next local morning is day 2.
    assert (d.action, d.reason, d.at) == ("retry", "network_limit", utc(2026, 1, 3, 0, 0))


def test_a_charge_that_never_happened_is_retried_at_once() -> None:
    retry = attempt(utc(2026, 1, 2, 8, 0), status="not_charged", decline_code=None)
    now = utc(2026, 1, 2, 8, 5)
    d = next_retry(state((attempt(T0), retry)), now, POLICY)
    assert (d.action, d.at) == ("retry", now)


def test_a_hard_decline_stops() -> None:
    d = next_retry(state((attempt(T0, decline_code="lost_card", network_code="41"),)), T0, POLICY)
    assert (d.action, d.reason, d.decline_class) == ("stop", "hard_decline", "visa_cat1")


def test_a_hard_decline_moves_the_retries_to_a_backup_card() -> None:
    s = state((attempt(T0, decline_code="stolen_card", network_code="43"),))
    s = replace(s, backup_cards=(("pm_2", "mastercard"),))
    d = next_retry(s, T0, POLICY)
    assert (d.action, d.reason, d.payment_method_id) == ("retry", "backup_card", "pm_2")
    assert d.at == utc(2026, 1, 2, 8, 0)
    assert "pm_2" in d.message


def test_the_backup_switch_can_be_turned_off() -> None:
    s = state((attempt(T0, decline_code="expired_card", network_code="54"),))
    s = replace(s, backup_cards=(("pm_2", "visa"),))
    d = next_retry(s, T0, replace(POLICY, switch_to_backup_card=False))
    assert (d.action, d.reason) == ("stop", "needs_new_card")


def test_retries_stay_on_the_backup_card_after_the_switch() -> None:
    first = attempt(T0, decline_code="lost_card", network_code="41")
    on_backup = attempt(utc(2026, 1, 2, 8, 0), payment_method_id="pm_2", network="mastercard")
    s = replace(state((first, on_backup)), backup_cards=(("pm_2", "mastercard"),))
    d = next_retry(s, on_backup.at, POLICY)
    assert (d.action, d.payment_method_id, d.at) == ("retry", "pm_2", utc(2026, 1, 4, 8, 0))


def test_a_card_dead_on_another_invoice_is_not_retried() -> None:
    elsewhere = attempt(T0 - 3 * D, invoice_id="in_0", decline_code="lost_card", network_code="")
    s = replace(state((attempt(T0),)), card_attempts=(elsewhere, attempt(T0)))
    assert next_retry(s, T0, POLICY).reason == "hard_decline"


def test_needs_new_card_stops_until_the_card_changes() -> None:
    d = next_retry(
        state((attempt(T0, decline_code="expired_card", network_code="54"),)), T0, POLICY
    )
    assert (d.action, d.reason) == ("stop", "needs_new_card")


def test_weak_soft_declines_get_two_retries() -> None:
    weak = {"decline_code": "do_not_honor", "network_code": "05"}
    attempts: tuple[AttemptRecord, ...] = (attempt(T0, **weak),)
    assert next_retry(state(attempts), T0, POLICY).action == "retry"
    attempts += (attempt(utc(2026, 1, 2, 8, 0), **weak),)
    assert next_retry(state(attempts), utc(2026, 1, 2, 8, 1), POLICY).action == "retry"
    attempts += (attempt(utc(2026, 1, 4, 8, 0), **weak),)
    d = next_retry(state(attempts), utc(2026, 1, 4, 8, 1), POLICY)
    assert (d.action, d.reason) == ("stop", "weak_soft_limit")


def test_mac_02_waits_72_hours_then_the_next_local_morning() -> None:
    first = attempt(
        T0, network="mastercard", decline_code=None, network_code=None, network_advice_code="02"
    )
    s = state((first,), network="mastercard", customer_timezone="America/New_York")
    d = next_retry(s, T0, POLICY)
    # 72 h after 19:05 EST on 31 Dec is 19:05 on 3 Jan; the next 09:00 EST is 14:00 UTC on 4 Jan.
    assert (d.action, d.reason, d.at) == ("retry", "mac_delay", utc(2026, 1, 4, 14, 0))


def test_withdrawal_count_limit_waits_a_day() -> None:
    late = utc(2026, 1, 1, 20, 0)  # 21:00 local; day 1 09:00 is only 12 hours later
    first = attempt(late, decline_code="withdrawal_count_limit_exceeded", network_code=None)
    d = next_retry(state((first,)), late, POLICY)
    assert (d.reason, d.at) == ("decline_delay", utc(2026, 1, 3, 8, 0))


def test_a_delay_past_the_window_drops_the_retry() -> None:
    first = attempt(T0, network="mastercard", network_code=None, network_advice_code="30")
    s = state((first,), network="mastercard")
    d = next_retry(
        s, T0, replace(POLICY, retry_days=(1,), suspend_day=5, final_notice_day=4, reminder_days=())
    )
    assert (d.action, d.reason) == ("stop", "mac_delay")


def test_nothing_after_the_window() -> None:
    suspension = utc(2026, 1, 15, 8, 0)  # day 14, 09:00 in Copenhagen
    last = next_retry(state((attempt(T0),)), suspension - D - H, POLICY)
    assert (last.action, last.at) == ("retry", suspension - D)  # day 13's morning
    # An hour before the suspension the next morning is the suspension's: no retry is left.
    d = next_retry(state((attempt(T0),)), suspension - H, POLICY)
    assert (d.action, d.reason) == ("stop", "window_over")
    d = next_retry(state((attempt(T0),)), suspension, POLICY)
    assert (d.action, d.reason) == ("stop", "window_over")


def test_a_slot_whose_day_is_over_moves_to_the_next_local_morning() -> None:
    # Attempts 1 and 2 failed on days 0 and 1; the case is taken over on day 4 at 15:00 in
    # Copenhagen, after day 3's slot: the next retry is day 5's morning, not "now".
    attempts = (attempt(T0), attempt(utc(2026, 1, 2, 8, 0)))
    d = next_retry(state(attempts), utc(2026, 1, 5, 14, 0), POLICY)
    assert (d.action, d.at) == ("retry", utc(2026, 1, 6, 8, 0))


def test_visa_cutoff_stops_a_long_window_at_30_days() -> None:
    policy = replace(POLICY, retry_days=(1, 29, 31), suspend_day=40)
    day_29 = utc(2026, 1, 30, 8, 0)
    assert next_retry(state((attempt(T0), attempt(T0 + D))), T0 + D, policy).at == day_29
    d = next_retry(state((attempt(T0), attempt(T0 + D), attempt(day_29))), day_29, policy)
    # Day 31 is past 30 days after the first decline: Visa allows no more reattempts.
    assert (d.action, d.reason) == ("stop", "network_limit")
    assert "new card or a new transaction" in d.message


@pytest.mark.parametrize(
    ("status", "reason"),
    [("succeeded", "paid"), ("unknown", "outcome_unknown"), ("pending", "outcome_unknown")],
)
def test_no_retry_decision_after_a_success_or_an_unknown_outcome(status: str, reason: str) -> None:
    attempts = (attempt(T0), attempt(T0 + D, status=status, decline_code=None))
    assert next_retry(state(attempts), T0 + D, POLICY).reason == reason


def test_a_duplicate_is_reconciled_not_retried() -> None:
    d = next_retry(state((attempt(T0, decline_code="duplicate_transaction"),)), T0, POLICY)
    assert (d.action, d.reason) == ("stop", "duplicate_transaction")


def test_an_unknown_time_zone_is_utc() -> None:
    d = next_retry(state((attempt(T0),), customer_timezone="Mars/Olympus"), T0, POLICY)
    assert d.at == utc(2026, 1, 2, 9, 0)


def test_retries_keep_the_local_morning_across_dst() -> None:
    first = utc(2026, 3, 27, 10, 0)  # Friday; clocks go forward on Sunday 29 March
    d = next_retry(state((attempt(first),)), first, replace(POLICY, retry_days=(1, 3)))
    assert d.at == utc(2026, 3, 28, 8, 0)  # 09:00 CET
    attempts = (attempt(first), attempt(d.at))
    d = next_retry(state(attempts), d.at, replace(POLICY, retry_days=(1, 3)))
    assert d.at == utc(2026, 3, 30, 7, 0)  # 09:00 CEST


def test_annual_plans_retry_over_28_days() -> None:
    policy = load_policy_book(DEFAULT_POLICY_FILE).for_plan("pro-annual", "year")
    attempts: tuple[AttemptRecord, ...] = (attempt(T0),)
    days = []
    now = T0
    while (d := next_retry(state(attempts, interval="year"), now, policy)).action == "retry":
        assert d.at is not None
        days.append((d.at.date() - T0.date()).days)
        attempts += (attempt(d.at),)
        now = d.at
    assert days == [1, 3, 5, 7, 14, 21]


def test_the_same_inputs_give_the_same_decision() -> None:
    s = state((attempt(T0),))
    assert next_retry(s, T0, POLICY) == next_retry(s, T0, POLICY)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_retry(state((attempt(T0),)), datetime(2026, 1, 1), POLICY)


def test_dunning_steps_default_calendar() -> None:
    steps = dunning_steps(T0, "Europe/Copenhagen", POLICY)
    assert [(s.kind, s.index, s.at) for s in steps] == [
        ("payment_retry_failed", 0, utc(2026, 1, 5, 8, 0)),
        ("final_notice", 1, utc(2026, 1, 12, 8, 0)),
        ("suspend", 2, utc(2026, 1, 15, 8, 0)),
    ]


def test_dunning_step_emails_leave_quiet_hours_but_the_suspension_does_not() -> None:
    steps = dunning_steps(T0, "UTC", replace(POLICY, retry_local_time="22:00"))
    assert [(s.kind, s.at.hour) for s in steps] == [
        ("payment_retry_failed", 8),
        ("final_notice", 8),
        ("suspend", 22),
    ]


def test_only_a_later_approval_revives_a_dead_card() -> None:
    dead = attempt(T0 - D, invoice_id="in_0", decline_code="lost_card", network_code="")
    tie = attempt(T0 - D, invoice_id="in_0", status="succeeded", decline_code=None)
    later = replace(tie, at=T0 - D + H)
    s = state((attempt(T0),))
    assert next_retry(replace(s, card_attempts=(dead, tie, attempt(T0))), T0, POLICY).reason == (
        "hard_decline"
    )
    assert next_retry(replace(s, card_attempts=(dead, later, attempt(T0))), T0, POLICY).action == (
        "retry"
    )
