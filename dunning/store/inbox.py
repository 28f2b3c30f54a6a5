"""Stored gateway webhook events (``webhook_events``): the receiver's insert and claim, the
worker's read and verdict, and what operators see of the events that failed for good.

Statuses: ``received`` (waiting for the worker), ``processed``, ``ignored`` and ``failed`` (the
event can never be applied as it is; ``error`` says why). Only ``received`` rows are offered to
the worker again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, func, select, update
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from dunning.store.tables import webhook_events
from dunning.store.upsert import insert_ignore

log = logging.getLogger(__name__)

# The database cannot be reached (down, restarting, pool exhausted): worth trying again later.
DATABASE_DOWN: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)
ERROR_CHARS = 1000  # what is kept of a failed event's error


def insert_event(
    conn: Connection,
    envelope: tuple[str, str, str],
    payload: Mapping[str, Any],
    status: str,
    now: datetime,
    claimed_until: datetime | None,
) -> int | None:
    """Store ``(provider, event_id, type)`` once; its row id, or ``None`` for a duplicate."""
    provider, event_id, kind = envelope
    ids = insert_ignore(
        conn,
        webhook_events,
        [
            {
                "provider": provider,
                "event_id": event_id,
                "type": kind,
                "payload": payload,
                "status": status,
                "received_at": now,
                "claimed_until": claimed_until,
            }
        ],
        conflict=["provider", "event_id"],
        returning=webhook_events.c.id,
    )
    return int(ids[0]) if ids else None


def release(engine: Engine, ids: Sequence[int]) -> None:
    """Drop the claim on events whose message was not sent: the producer offers them again.
    A database error is logged only; the claim then runs out on its own."""
    try:
        with engine.begin() as conn:
            conn.execute(
                update(webhook_events)
                .where(webhook_events.c.id.in_(list(ids)))
                .values(claimed_until=None)
            )
    except SQLAlchemyError as exc:
        log.warning("could not release the claim on webhook events %s: %s", list(ids), exc)


class Held:
    """A ``received`` event taken by one worker (see :func:`held`); ``row`` is ``None`` when
    there is nothing to do (done already, or another worker holds it)."""

    def __init__(self, engine: Engine, conn: Connection | None, row: RowMapping | None) -> None:
        self._engine, self._conn, self.row = engine, conn, row

    def finish(self, status: str, now: datetime, error: str | None = None) -> None:
        self._write(lambda conn: finish(conn, self._id, status, now, error))

    def defer(self, until: datetime, reason: str) -> None:
        self._write(lambda conn: defer(conn, self._id, until, reason))

    @property
    def _id(self) -> int:
        assert self.row is not None
        return int(self.row["id"])

    def _write(self, fn: Callable[[Connection], object]) -> None:
        if self._conn is not None:
            fn(self._conn)  # committed with the lock's transaction
            return
        with self._engine.begin() as conn:
            fn(conn)


@contextmanager
def held(engine: Engine, row_id: int) -> Iterator[Held]:
    """Take a ``received`` event for processing. On PostgreSQL its row stays locked (``FOR
    UPDATE SKIP LOCKED``) until the verdict commits at the end of the block, so two copies of
    one message (a redelivery, the producer's second offer) never apply it side by side; the
    second sees nothing to do. On SQLite, whose writers go one at a time anyway, the row is
    read and the verdict written on its own (a held write transaction would lock out the
    writes of the event itself)."""
    with engine.connect() as conn:
        locking = conn.dialect.name == "postgresql"
        stmt = select(webhook_events).where(
            webhook_events.c.id == row_id, webhook_events.c.status == "received"
        )
        if locking:
            stmt = stmt.with_for_update(skip_locked=True)
        row = conn.execute(stmt).mappings().first()
        if not locking:
            conn.rollback()
        yield Held(engine, conn if locking and row is not None else None, row)
        if locking:
            conn.commit()


def finish(
    conn: Connection, row_id: int, status: str, now: datetime, error: str | None = None
) -> bool:
    """Record the worker's verdict on a ``received`` event; whether this call recorded it."""
    stmt = (
        update(webhook_events)
        .where(webhook_events.c.id == row_id, webhook_events.c.status == "received")
        .values(
            status=status,
            error=None if error is None else error[:ERROR_CHARS],
            processed_at=now,
            claimed_until=None,
        )
    )
    return bool(conn.execute(stmt).rowcount)


def defer(conn: Connection, row_id: int, until: datetime, reason: str) -> None:
    """Leave a ``received`` event for later: not offered again before ``until``."""
    conn.execute(
        update(webhook_events)
        .where(webhook_events.c.id == row_id, webhook_events.c.status == "received")
        .values(claimed_until=until, error=reason)
    )


@dataclass(frozen=True, slots=True)
class FailedEvent:
    id: int
    provider: str
    event_id: str
    type: str
    error: str | None
    received_at: datetime
    failed_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "event_id": self.event_id,
            "type": self.type,
            "error": self.error,
            "received_at": self.received_at.isoformat(),
            "failed_at": self.failed_at.isoformat() if self.failed_at else None,
        }


def failed(conn: Connection, *, limit: int = 100) -> list[FailedEvent]:
    """The events that failed for good, newest first."""
    e = webhook_events.c
    stmt = (
        select(e.id, e.provider, e.event_id, e.type, e.error, e.received_at, e.processed_at)
        .where(e.status == "failed")
        .order_by(e.processed_at.desc(), e.id.desc())
        .limit(limit)
    )
    return [FailedEvent(*row) for row in conn.execute(stmt)]


def count_failed(conn: Connection) -> int:
    stmt = select(func.count()).where(webhook_events.c.status == "failed")
    return int(conn.execute(stmt).scalar_one())


def requeue_failed(conn: Connection, ids: Sequence[int] | None = None) -> int:
    """Offer failed events to the worker again (after the cause was fixed); how many."""
    stmt = update(webhook_events).where(webhook_events.c.status == "failed")
    if ids is not None:
        stmt = stmt.where(webhook_events.c.id.in_(list(ids)))
    values = {"status": "received", "error": None, "processed_at": None, "claimed_until": None}
    return int(conn.execute(stmt.values(**values)).rowcount)
