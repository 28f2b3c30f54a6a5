"""Sending queued emails: claim the outbox row, render, send, mark sent.

A row is claimed (a lease) before it is sent and marked sent after. If the process dies between
the server's acceptance and the mark, the lease runs out and the row is sent again with the same
``Message-ID``: the one duplicate SMTP allows, and one a mail client folds away.

``send_attempts`` counts the messages handed to the server. A failure of one message puts it
off by its own backoff; a server that takes no mail at all (:class:`MailUnavailable`) puts off
the rest of the batch untried, so an outage costs one try per batch, not one per email.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, insert, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from dunning.errors import MailPermanent, MailTransient, MailUnavailable, PermanentError
from dunning.mail.compose import compose
from dunning.mail.render import render_email
from dunning.mail.smtp import SEND_WAIT_FACTOR
from dunning.ports import Pipeline
from dunning.services.audit import audit_row
from dunning.store.tables import audit_log, notifications
from dunning.store.uow import statements

log = logging.getLogger(__name__)
_LEASE_TYPE = notifications.c.claimed_until.type

# How a send's outcome is written, on the batch's connection.
Mark = Callable[[Connection], None]


def _backoff(c: Pipeline, attempts: int) -> timedelta:
    t = c.settings.timing
    return timedelta(
        seconds=min(t.mail_retry_base_s * 2 ** max(attempts - 1, 0), t.mail_retry_max_s)
    )


def _due(ids: Sequence[int], now: datetime) -> list[ColumnElement[bool]]:
    return [
        notifications.c.id.in_(list(ids)),
        notifications.c.status == "pending",
        notifications.c.not_before <= now,
        or_(notifications.c.claimed_until.is_(None), notifications.c.claimed_until <= now),
    ]


def send_notifications(c: Pipeline, ids: Sequence[int], now: datetime) -> dict[int, str]:
    """Send each due row of ``ids`` once; returns what happened to each id claimed.

    The due rows are leased in one statement. Before each send the clock is read again, and
    when the lease could run out during that send (a send may take ``_send_bound``), the rows
    still to send are leased again: a lease that ran out mid-batch would let another sender
    send the later rows a second time. Each email is marked sent right after the server took
    it, in one statement on PostgreSQL (the mark and its audit row), so the window in which a
    crash resends a message stays one message wide.
    """
    results: dict[int, str] = {}
    with statements(c.engine) as conn:  # one round trip per write on PostgreSQL
        lease = now + timedelta(seconds=c.settings.timing.claim_lease_s)
        pending = deque(_claim(conn, ids, now, lease))
        while pending:
            at = max(now, c.clock.now())
            # At most once per send: a lease set shorter than a send is all there is.
            if lease - at < _send_bound(c):
                lease, pending = _renew(conn, c, pending, at, lease)
                if not pending:
                    break
            row = pending.popleft()
            try:
                results[row["id"]], mark = _send_one(c, row, at)
                with conn.begin():
                    mark(conn)
            except MailUnavailable as exc:
                # No server takes mail now: the rest of the batch would fail the same way.
                rest = [row, *pending]
                _put_off(conn, c, rest, at, lease, exc)
                results.update((r["id"], "deferred") for r in rest)
                break
            except BaseException:
                # This row keeps its lease (it may have gone out: when the lease ends it is
                # sent again with the same Message-ID); the rows after it are given back.
                _release(conn, [r["id"] for r in pending], lease)
                raise
    return results


def _send_bound(c: Pipeline) -> timedelta:
    """The longest one send may take: its SMTP wait, and a little for rendering."""
    return timedelta(seconds=c.settings.smtp.timeout_s * SEND_WAIT_FACTOR + 1)


def _claim(conn: Connection, ids: Sequence[int], now: datetime, lease: datetime) -> list[Any]:
    """Lease the due, unsent rows among ``ids``; return them (as leased) in ``ids`` order."""
    with conn.begin():
        claimed = (
            conn.execute(
                update(notifications)
                .where(*_due(ids, now))
                .values(claimed_until=lease)
                .returning(*notifications.c)
            )
            .mappings()
            .all()
        )
    order = {notification_id: n for n, notification_id in enumerate(ids)}
    return sorted(claimed, key=lambda r: order.get(r["id"], len(order)))


def _renew(
    conn: Connection, c: Pipeline, rows: deque[Any], now: datetime, lease: datetime
) -> tuple[datetime, deque[Any]]:
    """Lease ``rows`` again; drop those whose lease is no longer this batch's."""
    renewed = now + timedelta(seconds=c.settings.timing.claim_lease_s)
    rest = [r["id"] for r in rows]
    with conn.begin():
        kept = set(
            conn.execute(
                update(notifications)
                .where(
                    notifications.c.id.in_(rest),
                    notifications.c.status == "pending",
                    notifications.c.claimed_until == lease,
                )
                .values(claimed_until=renewed)
                .returning(notifications.c.id)
            ).scalars()
        )
    return renewed, deque(r for r in rows if r["id"] in kept)


def _put_off(
    conn: Connection, c: Pipeline, rows: list[Any], now: datetime, lease: datetime, exc: Exception
) -> None:
    """Put off ``rows`` (each by its own backoff) in one statement; the producer enqueues each
    again when its backoff ends."""
    tries = [1] + [0] * (len(rows) - 1)  # the first was tried; the others are not sent
    until = [now + _backoff(c, r["send_attempts"] + n) for r, n in zip(rows, tries, strict=True)]
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
                {"row_id": r["id"], "lease": lease, "until": u, "tries": n}
                for r, u, n in zip(rows, until, tries, strict=True)
            ],
        )
    log.warning(
        "SMTP unavailable (%s): %d emails put off until %s at the latest",
        exc,
        len(rows),
        max(until).isoformat(),
    )


def _release(conn: Connection, ids: list[int], lease: datetime) -> None:
    """Give back leased rows this batch will not send (it is failing): others may send them
    now rather than when the lease runs out."""
    if not ids:
        return
    try:
        with conn.begin():
            conn.execute(
                update(notifications)
                .where(notifications.c.id.in_(ids), notifications.c.claimed_until == lease)
                .values(claimed_until=None)
            )
    except SQLAlchemyError as exc:  # the lease runs out on its own
        log.warning("could not give back %d leased emails: %s", len(ids), exc)


def _send_one(c: Pipeline, row: RowMapping, now: datetime) -> tuple[str, Mark]:
    """Render and send one claimed row; return what happened and how to record it."""
    brand = c.settings.brand
    try:
        rendered = render_email(
            row["kind"],
            row["locale"],
            row["context"],
            brand_name=brand.name,
            support_email=brand.support_email,
            sent_at=now,
        )
        message = compose(
            rendered,
            mail_from=c.settings.mail_from,
            to=row["to_addr"],
            cc=row["cc"] or [],
            message_id=row["message_id"],
            date=now,
        )
        result = c.transport.send(message)
    except MailUnavailable:
        raise
    except MailTransient as exc:
        retry_at = now + _backoff(c, row["send_attempts"] + 1)
        log.warning(
            "email %s (%s) deferred until %s: %s",
            row["dedup_key"],
            row["kind"],
            retry_at.isoformat(),
            exc,
        )
        # The producer may enqueue it again as soon as the backoff ends.
        deferred = {"claimed_until": retry_at, "enqueued_until": None, "last_error": str(exc)[:500],
                    "send_attempts": notifications.c.send_attempts + 1}  # fmt: skip
        return "deferred", _update(row["id"], **deferred)
    except (MailPermanent, PermanentError) as exc:
        log.error("email %s (%s) refused for good: %s", row["dedup_key"], row["kind"], exc)
        failed = {"status": "failed", "claimed_until": None, "last_error": str(exc)[:500],
                  "send_attempts": notifications.c.send_attempts + 1}  # fmt: skip
        return "failed", _update(row["id"], **failed)
    if result.refused:
        log.warning("email %s: recipients refused %s", row["dedup_key"], sorted(result.refused))
    log.info("email %s (%s) sent to customer %s", row["dedup_key"], row["kind"], row["customer_id"])

    # Written at once: the window in which a crash resends this message stays one message wide.
    error = f"refused: {sorted(result.refused)}" if result.refused else None
    audit = audit_row(
        "email",
        now,
        invoice_id=row["invoice_id"],
        customer_id=row["customer_id"],
        payment_method_id=row["payment_method_id"],
        reason=row["kind"],
        template=row["kind"],
        to=row["to_addr"],
        cc=list(row["cc"] or []),
        subject=rendered.subject,
        dedup_key=row["dedup_key"],
        link=row["context"].get("update_url"),
        message_id=row["message_id"],
    )

    def sent(conn: Connection) -> None:
        _mark_sent(conn, row["id"], now, error, audit)

    return "sent", sent


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
# PostgreSQL: the mark and its audit row in one statement, handed to the driver as it is (the
# outbox runs it once per email; compiling it each time cost more than PostgreSQL running it).
_MARK_AND_AUDIT_PG = """
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


def _mark_sent(
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
    conn.exec_driver_sql(_MARK_AND_AUDIT_PG, params)


def _update(notification_id: int, **values: object) -> Mark:
    def write(conn: Connection) -> None:
        conn.execute(
            update(notifications).where(notifications.c.id == notification_id).values(**values)
        )

    return write
