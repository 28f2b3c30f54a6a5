"""Network limits across every invoice on a card (docs/declines-and-network-rules.md §2-3)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from dunning.policy.limits import check_limits, window_earliest
from dunning.policy.types import AttemptRecord, PlanPolicy
from tests.unit.policy.builders import T0, attempt

POLICY = PlanPolicy()
H = timedelta(hours=1)
D = timedelta(days=1)


def check(
    attempts: list[AttemptRecord],
    now: datetime,
    *,
    network: str = "visa",
    amount: int = 12500,
    policy: PlanPolicy = POLICY,
    first_decline_at: datetime | None = None,
) -> tuple[bool, str, datetime | None]:
    r = check_limits(
        attempts,
        network=network,
        amount=amount,
        now=now,
        policy=policy,
        first_decline_at=first_decline_at,
    )
    assert r.message
    return r.allowed, r.reason, r.earliest


def spread(n: int, step: timedelta, **kw: Any) -> list[AttemptRecord]:
    return [attempt(T0 + i * step, **kw) for i in range(n)]


def test_a_fresh_card_may_be_charged() -> None:
    assert check([], T0) == (True, "ok", None)


def test_visa_allows_twenty_attempts_of_one_amount_in_thirty_days() -> None:
    history = spread(19, H)
    assert check(history, T0 + 19 * H)[0]
    history = spread(20, H)
    allowed, reason, earliest = check(history, T0 + 20 * H)
    assert (allowed, reason) == (False, "network_limit")
    assert earliest == T0 + 30 * D  # when the oldest attempt leaves the window


def test_visa_limit_is_a_setting() -> None:
    history = spread(15, H)
    assert check(history, T0 + 15 * H)[0]
    assert not check(history, T0 + 15 * H, policy=PlanPolicy(visa_max_reattempts_30d=15))[0]


def test_visa_counts_only_the_same_amount() -> None:
    history = spread(20, H, amount=999)
    assert check(history, T0 + 20 * H)[0]


def test_an_approval_resets_the_visa_count() -> None:
    history = spread(20, H)
    history.append(attempt(T0 + 21 * H, status="succeeded"))
    assert check(history, T0 + 22 * H)[0]


@pytest.mark.parametrize("initiator", ["merchant", "customer"])
@pytest.mark.parametrize("status", ["declined", "succeeded", "unknown", "pending"])
def test_every_attempt_that_may_have_reached_the_network_counts(
    initiator: str, status: str
) -> None:
    history = spread(10, timedelta(minutes=5), network="mastercard", initiator=initiator)
    history[-1] = attempt(history[-1].at, network="mastercard", status=status)
    assert not check(history, T0 + H, network="mastercard")[0]


def test_a_charge_that_never_happened_does_not_count() -> None:
    history = spread(10, timedelta(minutes=5), network="mastercard", status="not_charged")
    assert check(history, T0 + H, network="mastercard")[0]


@pytest.mark.parametrize("code", ["04", "41", "43", "R0"])
def test_no_reattempt_after_a_visa_category_1_code(code: str) -> None:
    history = [attempt(T0, network_code=code, decline_code="do_not_honor")]
    assert check(history, T0 + 5 * D) == (False, "visa_category_1", None)


def test_an_approval_after_a_category_1_code_lifts_it() -> None:
    history = [attempt(T0, network_code="41"), attempt(T0 + D, status="succeeded")]
    assert check(history, T0 + 2 * D)[0]


def test_no_visa_reattempt_thirty_days_after_the_first_decline() -> None:
    history = [attempt(T0)]
    assert check(history, T0 + 29 * D, first_decline_at=T0)[0]
    assert check(history, T0 + 30 * D, first_decline_at=T0) == (False, "network_limit", None)


def test_a_visa_wait_past_the_cutoff_leaves_no_time() -> None:
    history = spread(20, H)
    allowed, _, earliest = check(history, T0 + 25 * D, first_decline_at=T0)
    assert (allowed, earliest) == (False, None)


def test_mastercard_allows_ten_attempts_per_card_in_24_hours() -> None:
    history = spread(10, H, network="mastercard", amount=1)  # amounts do not matter
    assert check(history[:9], T0 + 10 * H, network="mastercard")[0]
    assert check(history, T0 + 10 * H, network="mastercard") == (
        False,
        "network_limit",
        T0 + 24 * H,
    )


def test_mastercard_allows_35_attempts_per_card_in_30_days() -> None:
    history = spread(35, 20 * H, network="mastercard")
    now = history[-1].at + H
    allowed, reason, earliest = check(history, now, network="mastercard")
    assert (allowed, reason) == (False, "network_limit")
    assert earliest == T0 + 30 * D


def test_mastercard_limits_are_not_reset_by_an_approval() -> None:
    history = spread(10, H, network="mastercard")
    history.append(attempt(T0 + 10 * H, network="mastercard", status="succeeded"))
    assert not check(history, T0 + 11 * H, network="mastercard")[0]


@pytest.mark.parametrize("mac", ["03", "21"])
def test_no_retry_after_mac_03_or_21(mac: str) -> None:
    history = [attempt(T0, network="mastercard", network_advice_code=mac)]
    assert check(history, T0 + 10 * D, network="mastercard") == (False, "mac_never", None)


@pytest.mark.parametrize(("mac", "hours"), [("02", 72), ("24", 1), ("27", 96), ("30", 240)])
def test_mac_delay_sets_the_earliest_attempt(mac: str, hours: int) -> None:
    history = [attempt(T0, network="mastercard", network_advice_code=mac)]
    assert check(history, T0 + (hours - 0.5) * H, network="mastercard") == (
        False,
        "mac_delay",
        T0 + hours * H,
    )
    assert check(history, T0 + hours * H, network="mastercard")[0]


def test_the_latest_of_several_waits_binds() -> None:
    history = spread(10, H, network="mastercard")
    history.append(attempt(T0 + 10 * H, network="mastercard", network_advice_code="02"))
    assert check(history, T0 + 11 * H, network="mastercard")[2] == T0 + 82 * H


def test_other_networks_get_both_networks_count_limits() -> None:
    history = spread(10, H, network="amex")
    assert check(history, T0 + 10 * H, network="amex")[2] == T0 + 24 * H


def test_future_attempts_count_in_every_window_reaching_them() -> None:
    history = spread(10, H, network="mastercard")
    assert not check(history, T0 - H, network="mastercard")[0]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check([], datetime(2026, 1, 1))


def test_window_earliest_needs_a_positive_limit() -> None:
    with pytest.raises(ValueError, match="at least one attempt"):
        window_earliest([], T0, D, 0)


def test_an_approval_at_the_same_instant_does_not_lift_a_block() -> None:
    history = [attempt(T0, status="succeeded"), attempt(T0, network_code="41")]
    assert check(history, T0 + 2 * D) == (False, "visa_category_1", None)
