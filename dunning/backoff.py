"""Retry delays, pure: how long to wait before try ``n + 1`` after ``n`` failed tries.

One place for the arithmetic of every retry the pipeline schedules itself (emails the SMTP
server did not take, webhooks the merchant's endpoint did not answer); the actors' own
retries are dramatiq's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta


def exponential(failed: int, *, base_s: float, max_s: float, factor: float = 2.0) -> timedelta:
    """``base_s`` after the first failure, ``factor`` times longer after each one after it, never
    more than ``max_s``. ``failed`` below 1 counts as 1."""
    if base_s <= 0 or max_s <= 0 or factor < 1:
        raise ValueError("backoff needs positive times and a factor of at least 1")
    exponent = max(failed - 1, 0)
    # Capped before it is computed: a large exponent would overflow a float.
    if base_s * factor ** min(exponent, 64) >= max_s:
        return timedelta(seconds=max_s)
    return timedelta(seconds=base_s * factor**exponent)


def scheduled(failed: int, delays: Sequence[timedelta]) -> timedelta | None:
    """The delay after ``failed`` failures from a fixed schedule; ``None`` once it is used up."""
    if 1 <= failed <= len(delays):
        return delays[failed - 1]
    return None
