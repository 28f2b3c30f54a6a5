"""Sending queued emails: claim the outbox row, render, send, mark sent.

A row is claimed (a lease) before it is sent and marked sent after. If the process dies between
the server's acceptance and the mark, the lease runs out and the row is sent again with the same
``Message-ID``: the one duplicate SMTP allows, and one a mail client folds away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from dunning.bootstrap import Container
from dunning.errors import MailPermanent, MailTransient, PermanentError
from dunning.mail.message import build_message
from dunning.mail.render import render_email
from dunning.services.audit import record
from dunning.store.tables import notifications

log = logging.getLogger(__name__)


def _backoff(c: Container, attempts: int) -> timedelta:
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


def claim(c: Container, ids: Sequence[int], now: datetime) -> list[int]:
    """Lease the due, unsent rows among ``ids``; return those this caller now owns."""
    lease = now + timedelta(seconds=c.settings.timing.claim_lease_s)
    with c.engine.begin() as conn:
        stmt = (
            update(notifications)
            .where(*_due(ids, now))
            .values(claimed_until=lease, send_attempts=notifications.c.send_attempts + 1)
            .returning(notifications.c.id)
        )
        return [int(i) for i in conn.execute(stmt).scalars()]


def _claim_row(conn: Connection, c: Container, notification_id: int, now: datetime) -> Any:
    """Lease one due, unsent row and return it as leased (``None`` when not ours to send)."""
    lease = now + timedelta(seconds=c.settings.timing.claim_lease_s)
    return (
        conn.execute(
            update(notifications)
            .where(*_due([notification_id], now))
            .values(claimed_until=lease, send_attempts=notifications.c.send_attempts + 1)
            .returning(*notifications.c)
        )
        .mappings()
        .first()
    )


Mark = Callable[[Connection], None]


def send_notifications(c: Container, ids: Sequence[int], now: datetime) -> dict[int, str]:
    """Send each due row of ``ids`` once; returns what happened to each id claimed.

    Each row is claimed just before its own send, with the clock read again: one lease taken
    for the whole batch could run out while the earlier rows are still being sent, and another
    sender would then claim and send the later ones a second time. The batch keeps one database
    connection, and an email's mark commits together with the next row's claim (both happen
    right after its send): one commit per email instead of two.
    """
    results: dict[int, str] = {}
    mark: Mark | None = None
    with c.engine.connect() as conn:
        for notification_id in ids:
            at = max(now, c.clock.now())
            pending, mark = mark, None
            try:
                with conn.begin():
                    if pending is not None:
                        pending(conn)
                    row = _claim_row(conn, c, notification_id, at)
            except SQLAlchemyError:
                if pending is not None:  # the sent email is recorded even if the claim fails
                    with conn.begin():
                        pending(conn)
                raise
            if row is not None:
                results[row["id"]], mark = _send_one(c, row, at)
        if mark is not None:
            with conn.begin():
                mark(conn)
    return results


def _send_one(c: Container, row: RowMapping, now: datetime) -> tuple[str, Mark]:
    """Render and send one claimed row; return what happened and how to record it."""
    brand = c.settings.brand
    try:
        rendered = render_email(
            row["kind"],
            row["locale"],
            row["context"],
            brand_name=brand.name,
            support_email=brand.support_email,
        )
        message = build_message(
            rendered,
            mail_from=c.settings.mail_from,
            to=row["to_addr"],
            cc=row["cc"] or [],
            message_id=row["message_id"],
            date=now,
        )
        result = c.transport.send(message)
    except MailTransient as exc:
        retry_at = now + _backoff(c, row["send_attempts"])
        log.warning(
            "email %s (%s) deferred until %s: %s",
            row["dedup_key"],
            row["kind"],
            retry_at.isoformat(),
            exc,
        )
        return "deferred", _update(row["id"], claimed_until=retry_at, last_error=str(exc)[:500])
    except (MailPermanent, PermanentError) as exc:
        log.error("email %s (%s) refused for good: %s", row["dedup_key"], row["kind"], exc)
        values = {"status": "failed", "claimed_until": None, "last_error": str(exc)[:500]}
        return "failed", _update(row["id"], **values)
    if result.refused:
        log.warning("email %s: recipients refused %s", row["dedup_key"], sorted(result.refused))
    log.info("email %s (%s) sent to customer %s", row["dedup_key"], row["kind"], row["customer_id"])

    # Written at once, with the next claim: the window in which a crash resends this message
    # stays one message wide.
    def sent(conn: Connection) -> None:
        conn.execute(
            update(notifications)
            .where(notifications.c.id == row["id"])
            .values(
                status="sent",
                sent_at=now,
                claimed_until=None,
                last_error=f"refused: {sorted(result.refused)}" if result.refused else None,
            )
        )
        record(
            conn,
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

    return "sent", sent


def _update(notification_id: int, **values: object) -> Mark:
    def write(conn: Connection) -> None:
        conn.execute(
            update(notifications).where(notifications.c.id == notification_id).values(**values)
        )

    return write
