"""Failed ops logins are throttled per client address and logged.

Every answer 401 to a request that carried HTTP Basic credentials (``/ops``, its API,
``/metrics``, ``/healthz``'s detailed view) is a failed login: it is logged with the client's
address and counted. An address with ``DUNNING_OPS__LOGIN_FAILURES`` failures within
``DUNNING_OPS__LOGIN_WINDOW_S`` gets 429 for every request carrying credentials, right ones
included, until the oldest failure leaves the window: guessing the password gets that many
tries per window and address.

The counts live in this process's memory: N web processes allow N times the budget, and a
restart forgets them. The address is the connection's peer (behind a proxy, the proxy's: every
client then shares one budget, which errs on the side of refusing).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# Forget idle addresses once this many are tracked, so a flood of addresses cannot grow memory.
MAX_ADDRESSES = 50_000


class FailedLogins:
    """Failures per address within a sliding window, in this process's memory."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        seen = self._seen.get(address, deque())
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        if not seen:
            self._seen.pop(address, None)
        return seen

    def blocked(self, address: str) -> bool:
        with self._lock:
            return len(self._recent(address, self.clock())) >= self.limit

    def add(self, address: str) -> int:
        """Count one failure; return the failures within the window."""
        with self._lock:
            now = self.clock()
            if len(self._seen) >= MAX_ADDRESSES and address not in self._seen:
                for idle in [a for a in self._seen if not self._recent(a, now)]:
                    self._seen.pop(idle, None)
            seen = self._seen.setdefault(address, deque())
            seen.append(now)
            return len(seen)


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.failures = FailedLogins(limit, window_s, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_credentials(scope):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        if self.failures.blocked(address):
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
                count = self.failures.add(address)
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
