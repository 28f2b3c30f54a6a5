"""Exactly one active scheduler, on any broker: a lease row in the database its holder renews.

The election lives where the truth is. A scheduler that cannot reach the database cannot scan
for due work anyway, so whoever can renew the lease is also whoever can do the work, on Redis,
RabbitMQ or any other broker. (It used to be a Redis lock. That elected nobody on RabbitMQ, and
on Redis it only added a second thing whose outage stopped the scheduler while the database
could still be scanned; it does not earn its place next to the lease, so it is gone.)

Timing, with ``ttl_s`` the lease and a poll every ``min(leader_poll_s, ttl_s / 3)``:

- the holder renews on every poll; the lease then runs ``ttl_s`` from the *database's* clock
  (PostgreSQL's ``now()``), so schedulers on hosts whose clocks disagree still agree;
- the holder believes it leads only until ``ttl_s`` after it *started* its last successful
  renewal, by its own monotonic clock: that is before the lease ends in the database, so a
  leader cut off from the database stops running producers before anyone else may take over,
  even while its renewal hangs; a failed renewal stands it down at once;
- a standby takes the lease once it has run out: a killed leader is replaced within ``ttl_s``
  plus one poll; a leader stopped cleanly gives its lease back and is replaced within a poll.

Producers stay safe to run twice anyway (database claims), for the run that was under way
when leadership ended.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, case, create_engine, literal, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from dunning.store.engine import normalise_url
from dunning.store.tables import leader_leases
from dunning.store.types import UtcDateTime

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"


class Leadership(Protocol):
    identity: str

    @property
    def leading(self) -> bool:
        """Whether this instance may run the producers right now."""
        ...

    def acquire_or_renew(self) -> bool:
        """Take the lease if free, renew it if ours; ``True`` while we lead."""
        ...

    def release(self) -> None: ...


def new_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _clock(conn: Connection) -> tuple[Any, Callable[[timedelta], Any]]:
    """``(now, now + delta)`` as SQL expressions on the lease clock."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import func

        now = func.now()
        return now, lambda delta: now + delta
    current = datetime.now(UTC)
    return (
        literal(current, UtcDateTime()),
        lambda delta: literal(current + delta, UtcDateTime()),
    )


def take_lease(conn: Connection, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew the lease ``name`` for ``holder``; ``True`` if ``holder`` now holds it."""
    t = leader_leases
    now, later = _clock(conn)
    stmt: Any = _insert(conn)(t).values(
        name=name, holder=holder, acquired_at=now, expires_at=later(ttl)
    )
    ours = t.c.holder == stmt.excluded.holder
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.name],
        set_={
            "holder": stmt.excluded.holder,
            "expires_at": stmt.excluded.expires_at,
            "acquired_at": case((ours, t.c.acquired_at), else_=stmt.excluded.acquired_at),
        },
        # Renew our own lease, or take one that has run out; never someone else's live one.
        where=or_(ours, t.c.expires_at <= stmt.excluded.acquired_at),
    )
    return conn.execute(stmt.returning(t.c.holder)).first() is not None


def _insert(conn: Connection) -> Callable[..., Any]:
    """The dialect's INSERT, which knows ON CONFLICT."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def give_up_lease(conn: Connection, name: str, holder: str) -> None:
    """End ``holder``'s lease ``name`` now (the row stays, naming the last holder)."""
    now, _ = _clock(conn)
    t = leader_leases
    conn.execute(update(t).where(t.c.name == name, t.c.holder == holder).values(expires_at=now))


def current_leader(engine: Engine, name: str = SCHEDULER) -> str | None:
    """The identity holding the live lease ``name``, or ``None``."""
    with engine.connect() as conn:
        now, _ = _clock(conn)
        t = leader_leases
        row = conn.execute(select(t.c.holder).where(t.c.name == name, t.c.expires_at > now))
        return row.scalar_one_or_none()


class DatabaseLeadership:
    """The lease ``name`` in ``engine``'s database, renewed on every call."""

    def __init__(
        self,
        engine: Engine,
        *,
        ttl_s: float,
        name: str = SCHEDULER,
        identity: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self.name = name
        self.identity = identity or new_identity()
        self._monotonic = monotonic
        self._valid_until = float("-inf")
        self._held = False

    @property
    def leading(self) -> bool:
        return self._monotonic() < self._valid_until

    def acquire_or_renew(self) -> bool:
        started = self._monotonic()
        try:
            with self.engine.begin() as conn:
                _bound_statement_time(conn, self.ttl_s / 3)
                got = take_lease(conn, self.name, self.identity, timedelta(seconds=self.ttl_s))
        except SQLAlchemyError as exc:
            # Without the database we cannot know whether another scheduler leads: stand down.
            log.warning(
                "leader lease unavailable after %.1f s: %s",
                self._monotonic() - started,
                _first_line(exc),
            )
            got = False
        self._valid_until = started + self.ttl_s if got else float("-inf")
        if got != self._held:
            log.info("scheduler %s %s leadership", self.identity, "took" if got else "lost")
        self._held = got
        return got

    def release(self) -> None:
        self._valid_until = float("-inf")
        self._held = False
        try:
            with self.engine.begin() as conn:
                give_up_lease(conn, self.name, self.identity)
        except SQLAlchemyError:
            pass  # the lease runs out by itself


class LocalLeadership:
    """For the embedded default (one process): always the leader."""

    leading = True

    def __init__(self) -> None:
        self.identity = new_identity()

    def acquire_or_renew(self) -> bool:
        return True

    def release(self) -> None:
        return None


def _bound_statement_time(conn: Connection, seconds: float) -> None:
    """A renewal that waits on a lock or a slow server gives up within ``seconds``."""
    if conn.dialect.name == "postgresql":
        ms = max(int(seconds * 1000), 100)
        conn.execute(text(f"SET LOCAL statement_timeout = {ms}"))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def lease_engine(database_url: str, *, ttl_s: float) -> Engine:
    """A one-connection PostgreSQL engine for the lease alone: renewals never wait behind the
    producers for a pooled connection, and a dead link is noticed within the TTL (connect
    timeout and TCP keepalives, not the minutes of the kernel's defaults)."""
    url = normalise_url(database_url)
    budget_s = max(int(ttl_s / 3), 1)
    connect_args = {
        "connect_timeout": max(budget_s, 2),  # libpq's smallest
        "keepalives": 1,
        "keepalives_idle": budget_s,
        "keepalives_interval": 1,
        "keepalives_count": 3,
        "tcp_user_timeout": int(ttl_s * 1000),
    }
    return create_engine(
        url, pool_size=1, max_overflow=0, pool_timeout=ttl_s, connect_args=connect_args
    )


def leadership_for(database_url: str, engine: Engine, *, ttl_s: float) -> DatabaseLeadership:
    """The leadership of a ``dunning scheduler`` process: the lease in its database (over a
    connection of its own on PostgreSQL; on a SQLite file, the process's engine)."""
    if normalise_url(database_url).startswith("postgresql"):
        engine = lease_engine(database_url, ttl_s=ttl_s)
    return DatabaseLeadership(engine, ttl_s=ttl_s)
