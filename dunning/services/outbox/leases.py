"""A batch's hold on its outbox rows: leased in one statement, renewed while the batch runs,
given back or put off when the batch stops early.

The lease (``work_lease_s``) is short so that the rows of a worker that died are sent by
another soon after. While the batch runs, a keeper thread renews the rows still held every
third of the lease, in one statement for the whole batch: sending an email adds no statement.
If the keeper falls behind (the database was unreachable for a while), the batch renews the
lease itself before a send could outlive it. A row whose lease was lost meanwhile (another
sender took it once it ran out) is not sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, or_, update
from sqlalchemy.exc import SQLAlchemyError

from dunning.mail.transport import SEND_WAIT_FACTOR
from dunning.ports import Pipeline
from dunning.services.outbox.records import backoff
from dunning.store.tables import notifications
from dunning.store.uow import statements

log = logging.getLogger(__name__)
_LEASE_TYPE = notifications.c.claimed_until.type


@dataclass
class Lease:
    """The rows a batch holds and until when. ``lock`` orders the keeper's renewals and the
    batch's guarded writes, which compare ``claimed_until`` with ``until``."""

    until: datetime
    held: set[int]
    lost: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    renewals: int = 0

    def done(self, notification_id: int) -> None:
        """The row is recorded (sent, put off, failed): no longer renewed."""
        with self.lock:
            self.held.discard(notification_id)

    def let_go(self, ids: Sequence[int]) -> datetime:
        """Stop renewing ``ids``; return the lease they keep in the database."""
        with self.lock:
            self.held.difference_update(ids)
            return self.until


def lease_s(c: Pipeline) -> float:
    return c.settings.timing.work_lease_s


def send_bound(c: Pipeline) -> timedelta:
    """The longest one send may take: its SMTP wait, and a little for rendering."""
    return timedelta(seconds=c.settings.smtp.timeout_s * SEND_WAIT_FACTOR + 1)


def renew_margin(c: Pipeline) -> timedelta:
    """Renew in the batch itself when less than this is left: the keeper renews when two
    thirds are left, so this happens only when the keeper fell behind."""
    return min(send_bound(c), timedelta(seconds=lease_s(c) / 3))


def _due(ids: Sequence[int], now: datetime) -> list[Any]:
    return [
        notifications.c.id.in_(list(ids)),
        notifications.c.status == "pending",
        notifications.c.not_before <= now,
        or_(notifications.c.claimed_until.is_(None), notifications.c.claimed_until <= now),
    ]


def claim(
    conn: Connection, c: Pipeline, ids: Sequence[int], now: datetime
) -> tuple[Lease, list[RowMapping]]:
    """Lease the due, unsent rows among ``ids``; return the lease and the rows in ``ids``
    order. The producer's claim on them ends here: from now on this lease protects them, and
    when it runs out (the worker died) the producer enqueues them again."""
    until = now + timedelta(seconds=lease_s(c))
    with conn.begin():
        claimed = (
            conn.execute(
                update(notifications)
                .where(*_due(ids, now))
                .values(claimed_until=until, enqueued_until=None)
                .returning(*notifications.c)
            )
            .mappings()
            .all()
        )
    order = {notification_id: n for n, notification_id in enumerate(ids)}
    rows = sorted(claimed, key=lambda r: order.get(r["id"], len(order)))
    return Lease(until, {r["id"] for r in rows}), rows


def renew(conn: Connection, c: Pipeline, lease: Lease, now: datetime) -> None:
    """Extend the lease of the rows still held; a row whose lease is no longer this batch's
    (it ran out and another sender took it) is marked lost."""
    with lease.lock:
        held = list(lease.held)
        until = now + timedelta(seconds=lease_s(c))
        if held:
            with conn.begin():
                kept = set(
                    conn.execute(
                        update(notifications)
                        .where(
                            notifications.c.id.in_(held),
                            notifications.c.status == "pending",
                            notifications.c.claimed_until == lease.until,
                        )
                        .values(claimed_until=until)
                        .returning(notifications.c.id)
                    ).scalars()
                )
            lease.lost.update(set(held) - kept)
            lease.held.intersection_update(kept)
        lease.until = until
        lease.renewals += 1


@contextmanager
def kept(c: Pipeline, lease: Lease) -> Iterator[Lease]:
    """Renew ``lease`` from a daemon thread every third of the lease until the block ends."""
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(lease_s(c) / 3):
            try:
                with statements(c.engine) as conn:
                    renew(conn, c, lease, c.clock.now())
            except SQLAlchemyError as exc:  # the batch renews by itself if this goes on
                log.warning("could not renew the lease of %d emails: %s", len(lease.held), exc)

    keeper = threading.Thread(target=keep, name="outbox-lease", daemon=True)
    keeper.start()
    try:
        yield lease
    finally:
        stop.set()


def put_off(
    conn: Connection, c: Pipeline, rows: list[Any], now: datetime, lease: Lease, exc: Exception
) -> None:
    """Put off ``rows`` (each by its own backoff) in one statement; the producer enqueues each
    again when its backoff ends."""
    held_until = lease.let_go([r["id"] for r in rows])
    tries = [1] + [0] * (len(rows) - 1)  # the first was tried; the others are not sent
    until = [now + backoff(c, r["send_attempts"] + n) for r, n in zip(rows, tries, strict=True)]
    with conn.begin():
        conn.execute(
            update(notifications)
            .where(
                notifications.c.id == bindparam("row_id"),
                notifications.c.claimed_until == bindparam("lease", type_=_LEASE_TYPE),
            )
            .values(
                claimed_until=bindparam("until", type_=_LEASE_TYPE),
                send_attempts=notifications.c.send_attempts + bindparam("tries"),
                enqueued_until=None,
                last_error=str(exc)[:500],
            ),
            [
                {"row_id": r["id"], "lease": held_until, "until": u, "tries": n}
                for r, u, n in zip(rows, until, tries, strict=True)
            ],
        )
    log.warning(
        "SMTP unavailable (%s): %d emails put off until %s at the latest",
        exc,
        len(rows),
        max(until).isoformat(),
    )


def release(conn: Connection, ids: list[int], lease: Lease) -> None:
    """Give back leased rows this batch will not send (it is failing): others may send them
    now rather than when the lease runs out."""
    held_until = lease.let_go(ids)
    if not ids:
        return
    try:
        with conn.begin():
            conn.execute(
                update(notifications)
                .where(notifications.c.id.in_(ids), notifications.c.claimed_until == held_until)
                .values(claimed_until=None)
            )
    except SQLAlchemyError as exc:  # the lease runs out on its own
        log.warning("could not give back %d leased emails: %s", len(ids), exc)
