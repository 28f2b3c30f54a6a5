"""The outcome model is pure: the same retry always gets the same chance, the chance stays a
probability, and each timing effect moves it only the way its parameter says."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunning.errors import ConfigError
from dunning.gateways.base import Decline
from dunning.whatif.model import RetryContext, chance, draw, factors, model_class, passes
from dunning.whatif.params import CLASSES, DEFAULT_MODEL_FILE, load_params, timing_blind

PARAMS = load_params()
BLIND = timing_blind(PARAMS)

contexts = st.builds(
    RetryContext,
    decline_class=st.sampled_from(CLASSES),
    hours_since_failure=st.floats(0, 24 * 90, allow_nan=False),
    retries_before=st.integers(0, 20),
    local=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
    country=st.sampled_from(["", "DK", "US", "SE", "GB", "AU", "NO"]),
)


@given(contexts)
def test_a_chance_is_a_probability_and_always_the_same(ctx: RetryContext) -> None:
    p = chance(ctx, PARAMS)
    assert 0.0 <= p <= PARAMS.max_chance
    assert chance(ctx, PARAMS) == p
    below_cap = math.prod(factors(ctx, PARAMS).values())
    assert p == pytest.approx(min(below_cap, PARAMS.max_chance))


@given(contexts)
def test_hard_and_new_card_declines_never_pass_a_retry(ctx: RetryContext) -> None:
    for cls in ("hard", "new_card"):
        assert chance(replace(ctx, decline_class=cls), PARAMS) == 0.0


@given(contexts, st.integers(1, 5))
def test_more_declined_retries_never_raise_the_chance(ctx: RetryContext, more: int) -> None:
    later = replace(ctx, retries_before=ctx.retries_before + more)
    assert chance(later, PARAMS) <= chance(ctx, PARAMS)


@given(contexts, st.integers(-400, 400), st.floats(0, 24 * 60))
def test_a_timing_blind_model_ignores_when_the_retry_runs(
    ctx: RetryContext, shift_h: int, hours: float
) -> None:
    moved = replace(ctx, local=ctx.local + timedelta(hours=shift_h), hours_since_failure=hours)
    assert chance(moved, BLIND) == chance(ctx, BLIND)


@given(contexts)
def test_the_pay_day_boost_applies_only_near_a_pay_day(ctx: RetryContext) -> None:
    f = factors(replace(ctx, decline_class="insufficient_funds"), PARAMS)
    assert f["payday"] in (1.0, PARAMS.classes["insufficient_funds"].payday_boost)


def test_timing_moves_the_chance_of_an_insufficient_funds_retry() -> None:
    def at(local: datetime, hours: float) -> float:
        return chance(RetryContext("insufficient_funds", hours, 0, local, "DK"), PARAMS)

    wednesday = datetime(2026, 1, 14, 9)  # mid-month, mid-week
    assert at(wednesday, 2) < at(wednesday, 48)  # the funds have not arrived yet
    assert at(wednesday, 30 * 24) < at(wednesday, 4 * 24)  # the card has been abandoned
    payday = datetime(2026, 1, 30, 9)  # the last weekday of January: Danish pay day
    assert at(payday, 72) > at(datetime(2026, 1, 27, 9), 72)
    assert at(datetime(2026, 1, 17, 9), 72) < at(wednesday, 72)  # a Saturday


@given(st.integers(0, 2**31), st.text(min_size=1, max_size=20), st.integers(1, 40))
def test_draws_are_fixed_by_seed_invoice_and_attempt(seed: int, invoice: str, n: int) -> None:
    u = draw(seed, invoice, n)
    assert 0.0 <= u < 1.0
    assert draw(seed, invoice, n) == u


def test_draws_are_uniform_enough() -> None:
    us = [draw(7, f"in_{i}", 2) for i in range(20_000)]
    assert abs(sum(us) / len(us) - 0.5) < 0.01
    assert abs(sum(u < 0.1 for u in us) / len(us) - 0.1) < 0.01
    ctx = RetryContext("soft", 48, 0, datetime(2026, 1, 14, 9), "DK")
    p = chance(ctx, PARAMS)
    assert abs(sum(passes(ctx, PARAMS, u) for u in us) / len(us) - p) < 0.015


@pytest.mark.parametrize(
    ("decline", "network", "cls"),
    [
        (Decline("insufficient_funds", "51"), "visa", "insufficient_funds"),
        (Decline("processing_error", "96"), "visa", "soft"),
        (Decline("do_not_honor", "05"), "visa", "weak"),
        (Decline("expired_card", "54"), "visa", "new_card"),
        (Decline("stolen_card", "43"), "visa", "hard"),
        (Decline("insufficient_funds", None, None, "03"), "mastercard", "hard"),
    ],
)
def test_declines_fall_in_the_pipelines_own_classes(
    decline: Decline, network: str, cls: str
) -> None:
    assert model_class(decline, network) == cls


def test_the_default_file_keeps_hard_declines_at_zero() -> None:
    assert DEFAULT_MODEL_FILE.exists()
    assert PARAMS.classes["hard"].chance == PARAMS.classes["new_card"].chance == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("max_chance = 0.95", "max_chance = 2"), "max_chance: Input should be less than"),
        (("repeat_factor = 0.8", "repeat_factor = 0"), "repeat_factor: Input should be greater"),
        (("weekday = [1.0, 1.0, 1.0, 1.0, 1.0, 0.95, 0.95]", "weekday = [1.0]"), "weekday:"),
        (("SE = [25]", "SE = [32]"), "paydays.SE[0]: must be a day of the month"),
        (("[classes.weak]", "[classes.feeble]"), "classes: missing weak"),
        (("chance = 0.12", "chance = 1.5"), "classes.weak.chance"),
    ],
)
def test_a_bad_model_file_is_refused_naming_the_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    text = DEFAULT_MODEL_FILE.read_text(encoding="utf-8")
    assert change[0] in text
    path = tmp_path / "model.toml"
    path.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_params(path)
    assert message in str(caught.value)
