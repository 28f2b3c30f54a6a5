"""Sliding-window rate limits: one budget for every web process, kept in Redis.

A :class:`Budget` allows ``limit`` hits per key within any ``window_s``. Its counts live in a
:class:`Counters` store: :class:`RedisCounters` (sorted sets in the deployment's Redis, so N web
processes behind a balancer share one budget) or :class:`MemoryCounters` (this process's
memory: the embedded default, and a deployment without Redis, where each process keeps its
own). :func:`counters_for` picks one from the settings. Any page may use them: the card page's
verification attempts (:class:`AttemptLimits`) are one user.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import redis

from config.settings import Settings
from dunning.broker_names import BrokerNames
from dunning.redis_keys import rate_limit

log = logging.getLogger(__name__)

# Forget idle keys once this many are tracked, so a flood of addresses cannot grow memory.
MAX_KEYS = 50_000


@dataclass(frozen=True)
class Budget:
    """At most ``limit`` hits per key within any ``window_s`` seconds; ``name`` keeps the
    budgets apart (``card-customer``, ``card-address``, ``ops-login``…)."""

    name: str
    limit: int
    window_s: float


Want = tuple[Budget, str]


class Counters(Protocol):
    def take(self, wants: Sequence[Want], now: datetime) -> bool:
        """Count one hit in every budget and return True, or count nothing and return False
        when any of them is full. Atomic: concurrent takers never overdraw a budget."""

    def count(self, budget: Budget, key: str, now: datetime) -> int:
        """The hits of ``key`` within the window."""

    def add(self, budget: Budget, key: str, now: datetime) -> None:
        """Count one hit whatever the limit (a record rather than a permission)."""


class MemoryCounters:
    """The counts in this process's memory."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._windows: dict[str, float] = {}
        self._lock = threading.Lock()

    def _recent(self, budget: Budget, key: str, at: float) -> deque[float]:
        hits = self._hits.get((budget.name, key))
        if hits is None:
            return deque()
        while hits and hits[0] <= at - budget.window_s:
            hits.popleft()
        return hits

    def _hit(self, budget: Budget, key: str, at: float) -> None:
        self._windows[budget.name] = budget.window_s
        if len(self._hits) >= MAX_KEYS and (budget.name, key) not in self._hits:
            self._hits = {
                k: v for k, v in self._hits.items() if v and v[-1] > at - self._windows[k[0]]
            }
        self._hits.setdefault((budget.name, key), deque()).append(at)

    def take(self, wants: Sequence[Want], now: datetime) -> bool:
        at = now.timestamp()
        with self._lock:
            if any(len(self._recent(b, k, at)) >= b.limit for b, k in wants):
                return False
            for budget, key in wants:
                self._hit(budget, key, at)
            return True

    def count(self, budget: Budget, key: str, now: datetime) -> int:
        with self._lock:
            return len(self._recent(budget, key, now.timestamp()))

    def add(self, budget: Budget, key: str, now: datetime) -> None:
        with self._lock:
            self._hit(budget, key, now.timestamp())


# KEYS: one sorted set per budget. ARGV: now (ms), this hit's member, then limit and window
# (ms) per key. Drops the hits that left each window, refuses when any set is full, else adds.
_TAKE = """
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - tonumber(ARGV[2 + 2 * i]))
  if redis.call('ZCARD', key) >= tonumber(ARGV[1 + 2 * i]) then return 0 end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]))
end
return 1
"""


class RedisCounters:
    """The counts in Redis, shared by every process on it. While Redis cannot be reached the
    counts fall back to this process's memory (each process limits on its own meanwhile)."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.fallback = MemoryCounters()
        self._take = client.register_script(_TAKE)
        self._warned = 0.0

    def _key(self, budget: Budget, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]
        return rate_limit(self.namespace, budget.name, digest)

    def _down(self, exc: redis.RedisError) -> None:
        if time.monotonic() - self._warned > 60:
            self._warned = time.monotonic()
            log.warning("rate limits: Redis unreachable (%s); counting in memory meanwhile", exc)

    def take(self, wants: Sequence[Want], now: datetime) -> bool:
        args: list[str | int] = [int(now.timestamp() * 1000), uuid.uuid4().hex]
        for budget, _ in wants:
            args += [budget.limit, int(budget.window_s * 1000)]
        try:
            keys = [self._key(b, k) for b, k in wants]
            return bool(self._take(keys=keys, args=args))
        except redis.RedisError as exc:
            self._down(exc)
            return self.fallback.take(wants, now)

    def count(self, budget: Budget, key: str, now: datetime) -> int:
        name, at = self._key(budget, key), int(now.timestamp() * 1000)
        try:
            pipe = self.client.pipeline()
            pipe.zremrangebyscore(name, "-inf", at - int(budget.window_s * 1000))
            pipe.zcard(name)
            return int(pipe.execute()[1])
        except redis.RedisError as exc:
            self._down(exc)
            return self.fallback.count(budget, key, now)

    def add(self, budget: Budget, key: str, now: datetime) -> None:
        name, at = self._key(budget, key), int(now.timestamp() * 1000)
        try:
            pipe = self.client.pipeline()
            pipe.zadd(name, {uuid.uuid4().hex: at})
            pipe.pexpire(name, int(budget.window_s * 1000))
            pipe.execute()
        except redis.RedisError as exc:
            self._down(exc)
            self.fallback.add(budget, key, now)


def limits_redis_url(settings: Settings) -> str | None:
    """Where the shared counts live: ``DUNNING_WEB__LIMITS_REDIS_URL``, else a Redis broker."""
    if settings.web.limits_redis_url:
        return settings.web.limits_redis_url
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return settings.broker_url
    return None


def counters_for(settings: Settings) -> Counters:
    """Redis counts when the settings name a Redis; this process's memory otherwise."""
    url = limits_redis_url(settings)
    if url is None:
        return MemoryCounters()
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return RedisCounters(client, BrokerNames.for_settings(settings).redis_namespace)


class AttemptLimits:
    """Card verification attempts per customer and per client address; both must have room.
    Declines are remembered per customer, so the page can tell the first from the others."""

    def __init__(
        self,
        *,
        per_link: int = 5,
        per_address: int = 20,
        window: timedelta = timedelta(minutes=10),
        counters: Counters | None = None,
    ) -> None:
        seconds = window.total_seconds()
        self.customer = Budget("card-customer", per_link, seconds)
        self.address = Budget("card-address", per_address, seconds)
        self.declines = Budget("card-declines", 1, seconds)
        self.counters = counters or MemoryCounters()

    @classmethod
    def from_settings(cls, settings: Settings) -> AttemptLimits:
        web = settings.web
        return cls(
            per_link=web.card_attempts_per_customer,
            per_address=web.card_attempts_per_address,
            window=timedelta(seconds=web.card_attempts_window_s),
            counters=counters_for(settings),
        )

    def full(self, customer: str, address: str, now: datetime) -> bool:
        """True when either budget has no room (counts nothing)."""
        return self.counters.count(self.customer, customer, now) >= self.customer.limit or (
            self.counters.count(self.address, address, now) >= self.address.limit
        )

    def allow(self, customer: str, address: str, now: datetime) -> bool:
        """Count one attempt and return True, or return False (and count nothing) when full."""
        return self.counters.take(((self.customer, customer), (self.address, address)), now)

    def declined_before(self, customer: str, now: datetime) -> bool:
        """Record a decline; True when the customer had one already within the window."""
        before = self.counters.count(self.declines, customer, now)
        self.counters.add(self.declines, customer, now)
        return before > 0
