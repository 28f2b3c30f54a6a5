from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunning.backoff import exponential, scheduled


def test_doubles_from_the_base_up_to_the_cap() -> None:
    delays = [exponential(n, base_s=60, max_s=3600).total_seconds() for n in range(1, 9)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600]


@given(st.integers(min_value=-5, max_value=10_000), st.floats(0.1, 1e4), st.floats(0.1, 1e6))
def test_never_below_the_base_nor_above_the_cap(failed: int, base_s: float, max_s: float) -> None:
    delay = exponential(failed, base_s=base_s, max_s=max_s).total_seconds()
    assert delay <= max_s + 1e-6
    assert delay >= min(base_s, max_s) - 1e-6


def test_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        exponential(1, base_s=0, max_s=1)


def test_a_fixed_schedule_ends() -> None:
    schedule = [timedelta(minutes=1), timedelta(minutes=5)]
    assert [scheduled(n, schedule) for n in (0, 1, 2, 3)] == [
        None,
        timedelta(minutes=1),
        timedelta(minutes=5),
        None,
    ]
