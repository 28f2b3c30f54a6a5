"""What a send did, written to the outbox row: sent (with its audit row), put off by its
backoff, or failed for good."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Connection, bindparam, insert, update
from sqlalchemy.exc import DBAPIError

from dunning.ports import Pipeline
from dunning.store.tables import audit_log, notifications

# How a send's outcome is written, on the batch's connection.
Mark = Callable[[Connection], None]


def backoff(c: Pipeline, attempts: int) -> timedelta:
    """The wait after ``attempts`` failed sends: doubling from the base up to the maximum."""
    t = c.settings.timing
    return timedelta(
        seconds=min(t.mail_retry_base_s * 2 ** max(attempts - 1, 0), t.mail_retry_max_s)
    )


_MARK = (
    update(notifications)
    .where(notifications.c.id == bindparam("notification_id"))
    .values(
        status="sent",
        sent_at=bindparam("sent_at", type_=notifications.c.sent_at.type),
        claimed_until=None,
        last_error=bindparam("error", type_=notifications.c.last_error.type),
        send_attempts=notifications.c.send_attempts + 1,
    )
)
# PostgreSQL: the mark and its audit row in one statement, run by psycopg itself on the batch's
# connection (the outbox runs it once per email: SQLAlchemy's compiling, then its execution
# context and result, cost more than PostgreSQL running it; psycopg prepares it once it has
# run a few times on a connection).
_MARK_AND_AUDIT_PG = b"""
WITH marked AS (
    UPDATE notifications
    SET status = 'sent', sent_at = %(at)s, claimed_until = NULL, last_error = %(error)s,
        send_attempts = send_attempts + 1
    WHERE id = %(id)s
    RETURNING id
)
INSERT INTO audit_log (at, kind, invoice_id, subscription_id, customer_id, payment_method_id,
                       actor, reason, message, data)
SELECT %(at)s, %(kind)s, %(invoice_id)s, %(subscription_id)s, %(customer_id)s,
       %(payment_method_id)s, %(actor)s, %(reason)s, %(message)s, CAST(%(data)s AS JSON)
FROM marked
"""


def mark_sent(
    conn: Connection, notification_id: int, at: datetime, error: str | None, audit: dict[str, Any]
) -> None:
    """Mark the row sent and write its audit row: one statement on PostgreSQL."""
    if conn.dialect.name != "postgresql":  # SQLite has no UPDATE in a WITH clause
        conn.execute(_MARK, {"notification_id": notification_id, "sent_at": at, "error": error})
        conn.execute(insert(audit_log), [audit])
        return
    params = {k: v for k, v in audit.items() if k not in ("at", "data")}
    params |= {"id": notification_id, "at": at.astimezone(UTC), "error": error,
               "data": json.dumps(audit["data"])}  # fmt: skip
    driver = conn.connection.driver_connection
    assert driver is not None, "the batch's connection is checked out"
    try:
        driver.execute(_MARK_AND_AUDIT_PG, params)
    except psycopg.Error as exc:  # raised as SQLAlchemy raises it; the pool's pre-ping
        # finds a broken connection before it is used again
        raise DBAPIError.instance(_MARK_AND_AUDIT_PG.decode(), params, exc, psycopg.Error) from exc


def update_row(notification_id: int, **values: object) -> Mark:
    """A mark that sets ``values`` on the row."""

    def write(conn: Connection) -> None:
        conn.execute(
            update(notifications).where(notifications.c.id == notification_id).values(**values)
        )

    return write


def deferred(notification_id: int, retry_at: datetime, error: str) -> Mark:
    """Put off until ``retry_at``; the producer may enqueue it again as soon as that passes."""
    return update_row(
        notification_id,
        claimed_until=retry_at,
        enqueued_until=None,
        last_error=error[:500],
        send_attempts=notifications.c.send_attempts + 1,
    )


def failed(notification_id: int, error: str) -> Mark:
    """Refused for good: never sent again."""
    return update_row(
        notification_id,
        status="failed",
        claimed_until=None,
        last_error=error[:500],
        send_attempts=notifications.c.send_attempts + 1,
    )
