"""Whether any frequent producer would find work: lets the simulation skip the hours in which
none would, without changing what runs when something is due.

The conditions are those of the scans in ``schedules/producers.py`` with the claim columns left
out, so this can only say "due" more often than the scans find work, never less.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, exists, or_, select

from dunning.store.tables import invoices, notifications, payment_attempts, webhook_events


def anything_due(engine: Engine, now: datetime, *, unknown_after: timedelta) -> bool:
    """Whether a retry, a dunning step, an email, a stored webhook event or a charge look-up
    is due at ``now``."""
    checks = [
        exists().where(
            invoices.c.status == "open",
            invoices.c.next_attempt_at.is_not(None),
            invoices.c.next_attempt_at <= now,
        ),
        exists().where(
            invoices.c.status == "open",
            invoices.c.next_step_at.is_not(None),
            invoices.c.next_step_at <= now,
        ),
        exists().where(notifications.c.status == "pending", notifications.c.not_before <= now),
        exists().where(webhook_events.c.status == "received"),
        exists().where(
            payment_attempts.c.status.in_(["pending", "unknown"]),
            payment_attempts.c.created_at <= now - unknown_after,
        ),
    ]
    with engine.connect() as conn:
        return bool(conn.execute(select(or_(*checks))).scalar())
