"""Which frequent producers would find work, and when the next one will: lets the simulation
run only the producers with something to do and skip the hours in which none has, without
changing what runs when something is due.

The conditions are those of the scans in ``schedules/producers.py`` with the claim columns left
out, so they can only say "due" more often (or sooner) than the scans find work, never less.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, exists, func, select

from dunning.store.tables import invoices, notifications, payment_attempts, webhook_events

_UNRESOLVED = ("pending", "unknown")


def due_producers(engine: Engine, now: datetime, *, unknown_after: timedelta) -> set[str]:
    """The frequent producers whose scan may find work at ``now``."""
    checks = {
        "due_retries": exists().where(
            invoices.c.status == "open",
            invoices.c.next_attempt_at.is_not(None),
            invoices.c.next_attempt_at <= now,
        ),
        "due_steps": exists().where(
            invoices.c.status == "open",
            invoices.c.next_step_at.is_not(None),
            invoices.c.next_step_at <= now,
        ),
        "due_emails": exists().where(
            notifications.c.status == "pending", notifications.c.not_before <= now
        ),
        "due_events": exists().where(webhook_events.c.status == "received"),
        "unknown_outcomes": exists().where(
            payment_attempts.c.status.in_(_UNRESOLVED),
            payment_attempts.c.created_at <= now - unknown_after,
        ),
    }
    with engine.connect() as conn:
        row = conn.execute(select(*(c.label(name) for name, c in checks.items()))).one()
    return {name for name, due in row._mapping.items() if due}


def anything_due(engine: Engine, now: datetime, *, unknown_after: timedelta) -> bool:
    """Whether a retry, a dunning step, an email, a stored webhook event or a charge look-up
    is due at ``now``."""
    return bool(due_producers(engine, now, unknown_after=unknown_after))


def next_due(engine: Engine, *, unknown_after: timedelta) -> datetime | None:
    """The earliest time at which a frequent producer may find work (it may be past), or
    ``None`` when nothing is waiting."""
    times = [
        select(func.min(invoices.c.next_attempt_at)).where(invoices.c.status == "open"),
        select(func.min(invoices.c.next_step_at)).where(invoices.c.status == "open"),
        select(func.min(payment_attempts.c.created_at)).where(
            payment_attempts.c.status.in_(_UNRESOLVED)
        ),
        select(func.min(webhook_events.c.received_at)).where(webhook_events.c.status == "received"),
        select(func.min(notifications.c.not_before)).where(notifications.c.status == "pending"),
    ]
    with engine.connect() as conn:
        found = [conn.execute(stmt).scalar() for stmt in times]
    if found[2] is not None:
        found[2] += unknown_after
    return min((t for t in found if t is not None), default=None)
