"""Sliding-window rate limits for card verification attempts.

The windows live in this process's memory: right for one web process (the embedded default and
a single ``dunning web``). Several web processes behind a balancer each keep their own
windows, so the effective limit multiplies by their number; a shared store (Redis) would be
needed to hold it exactly.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Forget idle keys once this many are tracked, so a flood of addresses cannot grow memory.
MAX_KEYS = 50_000


@dataclass
class SlidingWindow:
    """At most ``limit`` hits per key within any ``window``."""

    limit: int
    window: timedelta
    _hits: dict[str, deque[datetime]] = field(default_factory=dict)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits

    def full(self, key: str, now: datetime) -> bool:
        return len(self._recent(key, now)) >= self.limit

    def hit(self, key: str, now: datetime) -> None:
        if len(self._hits) >= MAX_KEYS and key not in self._hits:
            for stale in [k for k in self._hits if not self._recent(k, now)]:
                self._hits.pop(stale, None)
        self._hits.setdefault(key, deque()).append(now)


class AttemptLimits:
    """Verification attempts per link and per client address; both must have room."""

    def __init__(
        self,
        *,
        per_link: int = 5,
        per_address: int = 20,
        window: timedelta = timedelta(minutes=10),
    ) -> None:
        self._link = SlidingWindow(per_link, window)
        self._address = SlidingWindow(per_address, window)
        self._lock = threading.Lock()

    def allow(self, link_key: str, address: str, now: datetime) -> bool:
        """Count one attempt and return True, or return False (and count nothing) when full."""
        pairs: Sequence[tuple[SlidingWindow, str]] = (
            (self._link, link_key),
            (self._address, address),
        )
        with self._lock:
            if any(window.full(key, now) for window, key in pairs):
                return False
            for window, key in pairs:
                window.hit(key, now)
            return True
