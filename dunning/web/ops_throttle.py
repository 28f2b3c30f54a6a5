"""Failed ops logins are throttled per client address and logged.

Every answer 401 to a request that carried HTTP Basic credentials (``/ops``, its API,
``/metrics``, ``/healthz``'s detailed view) is a failed login: it is logged with the client's
address and counted. An address with ``DUNNING_OPS__LOGIN_FAILURES`` failures within
``DUNNING_OPS__LOGIN_WINDOW_S`` gets 429 for every request carrying credentials, right ones
included, until the oldest failure leaves the window: guessing the password gets that many
tries per window and address.

The counts are a :class:`~dunning.web.ratelimit.Budget` (``ops-login``) in the same counters as
the card page's limits: in Redis when the app runs on it (``DUNNING_WEB__LIMITS_REDIS_URL``, else
a Redis broker), so every web process behind a balancer shares one budget per address and a
restart forgets nothing; in this process's memory on the embedded default, and while Redis
cannot be reached. The address is the client's as the card page reads it
(:func:`~dunning.web.client_address.client_address`): behind a proxy listed in
``DUNNING_WEB__TRUSTED_PROXIES`` the one it names in X-Forwarded-For, so that one guesser
behind the balancer cannot lock every operator out; from anyone else the connection's peer,
whatever the header says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dunning.web.client_address import Network, client_address
from dunning.web.ratelimit import Budget, Counters, MemoryCounters

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FailedLogins:
    """Failures per address within a sliding window, in ``counters`` (this process's memory
    unless given shared ones)."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        clock: Callable[[], datetime] = _utc_now,
        counters: Counters | None = None,
    ) -> None:
        self.budget = Budget("ops-login", limit, window_s)
        self.clock = clock
        self.counters = counters or MemoryCounters()

    @property
    def limit(self) -> int:
        return self.budget.limit

    @property
    def window_s(self) -> float:
        return self.budget.window_s

    def blocked(self, address: str) -> bool:
        return self.counters.count(self.budget, address, self.clock()) >= self.budget.limit

    def add(self, address: str) -> int:
        """Count one failure; return the failures within the window."""
        now = self.clock()
        self.counters.add(self.budget, address, now)
        return self.counters.count(self.budget, address, now)


def _has_credentials(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return bytes(value[:6]).lower() == b"basic "
    return False


class LoginThrottle:
    """ASGI middleware: 429 for credentials from an address past its budget; counts and logs
    every 401 answer to credentials."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        window_s: float,
        clock: Callable[[], datetime] = _utc_now,
        counters: Counters | None = None,
        proxies: Sequence[Network] = (),
    ) -> None:
        self.app = app
        self.failures = FailedLogins(limit, window_s, clock, counters)
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_credentials(scope):
            await self.app(scope, receive, send)
            return
        address = client_address(Request(scope), self.proxies)
        # The counters may wait on Redis (up to its timeout when it is down): off the loop.
        if await run_in_threadpool(self.failures.blocked, address):
            log.warning("ops: login from %s refused: too many failed logins", address)
            refused = PlainTextResponse(
                "too many failed logins from this address; try again later\n",
                status_code=429,
                headers={"Retry-After": str(int(self.failures.window_s))},
            )
            await refused(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                count = await run_in_threadpool(self.failures.add, address)
                log.warning(
                    "ops: failed login from %s on %s (%d of %d allowed in %d s)",
                    address,
                    scope.get("path", "?"),
                    count,
                    self.failures.limit,
                    self.failures.window_s,
                )
            await send(message)

        await self.app(scope, receive, watch)
