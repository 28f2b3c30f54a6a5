"""Producers: find due work in the database, claim it, enqueue it in bulk. Nothing else.

Each scan reads a partial index of due rows in batches, so its cost grows with the due work,
not with the size of the book. ``now`` is passed in: the scheduler reads the clock, the
simulation passes its virtual one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from dunning.bootstrap import Container
from dunning.services import expiry, purge
from dunning.store.tables import (
    invoices,
    notifications,
    outbound_events,
    payment_attempts,
    webhook_events,
)
from schedules.claims import claim_due

log = logging.getLogger(__name__)
MAX_BATCHES_PER_RUN = 50


def _lease(c: Container, now: datetime) -> datetime:
    return now + timedelta(seconds=c.settings.timing.claim_lease_s)


def _drain(claim_batch: Callable[[], int], batch: int) -> int:
    total = 0
    for _ in range(MAX_BATCHES_PER_RUN):
        n = claim_batch()
        total += n
        if n < batch:
            break
    return total


def due_retries(c: Container, now: datetime) -> int:
    """Enqueue the charge retries that are due."""
    batch = c.settings.timing.scan_batch

    def one() -> int:
        with c.engine.begin() as conn:
            rows = claim_due(
                conn,
                invoices,
                due=[
                    invoices.c.status == "open",
                    invoices.c.next_attempt_at.is_not(None),
                    invoices.c.next_attempt_at <= now,
                    invoices.c.paused.is_(False),
                ],
                order_by=invoices.c.next_attempt_at,
                claim_column="retry_claimed_until",
                now=now,
                lease_until=_lease(c, now),
                limit=batch,
                returning=[invoices.c.id, invoices.c.attempt_count],
            )
        c.dispatcher.retry_charges([(r.id, int(r.attempt_count) + 1) for r in rows])
        return len(rows)

    return _log("due_retries", _drain(one, batch))


def due_steps(c: Container, now: datetime) -> int:
    """Enqueue reminders, final notices and suspensions that are due."""
    batch = c.settings.timing.scan_batch

    def one() -> int:
        with c.engine.begin() as conn:
            rows = claim_due(
                conn,
                invoices,
                due=[
                    invoices.c.status == "open",
                    invoices.c.next_step_at.is_not(None),
                    invoices.c.next_step_at <= now,
                ],
                order_by=invoices.c.next_step_at,
                claim_column="step_claimed_until",
                now=now,
                lease_until=_lease(c, now),
                limit=batch,
                returning=[invoices.c.id],
            )
        c.dispatcher.run_steps([r.id for r in rows])
        return len(rows)

    return _log("due_steps", _drain(one, batch))


def due_emails(c: Container, now: datetime) -> int:
    """Enqueue outbox rows that are due (after quiet hours, or a failed send's backoff)."""
    batch = c.settings.timing.scan_batch

    def one() -> int:
        with c.engine.begin() as conn:
            rows = claim_due(
                conn,
                notifications,
                due=[
                    notifications.c.status == "pending",
                    notifications.c.not_before <= now,
                    # A row whose send was deferred (SMTP down) is left unclaimed until its
                    # backoff ends: claimed now, it would wait for the whole enqueue lease.
                    or_(
                        notifications.c.claimed_until.is_(None),
                        notifications.c.claimed_until <= now,
                    ),
                ],
                order_by=notifications.c.not_before,
                claim_column="enqueued_until",
                now=now,
                lease_until=_lease(c, now),
                limit=batch,
                returning=[notifications.c.id],
            )
        c.dispatcher.send_notifications([r.id for r in rows])
        return len(rows)

    return _log("due_emails", _drain(one, batch))


def due_events(c: Container, now: datetime) -> int:
    """Enqueue stored webhook events not yet processed (their first message may be lost)."""
    batch = c.settings.timing.scan_batch

    def one() -> int:
        with c.engine.begin() as conn:
            rows = claim_due(
                conn,
                webhook_events,
                due=[webhook_events.c.status == "received"],
                order_by=webhook_events.c.received_at,
                claim_column="claimed_until",
                now=now,
                lease_until=_lease(c, now),
                limit=batch,
                returning=[webhook_events.c.id],
            )
        c.dispatcher.process_events([r.id for r in rows])
        return len(rows)

    return _log("due_events", _drain(one, batch))


def unknown_outcomes(c: Container, now: datetime) -> int:
    """Enqueue look-ups of charges still pending or unknown after ``unknown_after_s``."""
    older_than = now - timedelta(seconds=c.settings.timing.unknown_after_s)
    with c.engine.connect() as conn:
        keys = list(
            conn.execute(
                select(payment_attempts.c.idempotency_key)
                .where(
                    payment_attempts.c.status.in_(["pending", "unknown"]),
                    payment_attempts.c.created_at <= older_than,
                )
                .order_by(payment_attempts.c.created_at)
                .limit(c.settings.timing.scan_batch)
            ).scalars()
        )
    c.dispatcher.resolve_attempts(keys)
    return _log("unknown_outcomes", len(keys))


def expiring_cards(c: Container, now: datetime) -> int:
    """Queue card-expiry reminders that are due (sending goes through the outbox)."""
    return _log("expiring_cards", expiry.queue_expiry_reminders(c, now))


def token_purge(c: Container, now: datetime) -> int:
    """Enqueue deletion of card tokens past retention, and of removed cards."""
    ids = purge.purge_candidates(c, now, limit=c.settings.timing.scan_batch)
    c.dispatcher.purge_tokens(ids)
    return _log("token_purge", len(ids))


def due_outbound(c: Container, now: datetime) -> int:
    """Enqueue webhooks to the merchant's endpoints that are due (new, or a retry's time)."""
    batch = c.settings.timing.scan_batch

    def one() -> int:
        with c.engine.begin() as conn:
            rows = claim_due(
                conn,
                outbound_events,
                due=[
                    outbound_events.c.status == "pending",
                    outbound_events.c.next_attempt_at <= now,
                ],
                order_by=outbound_events.c.next_attempt_at,
                claim_column="claimed_until",
                now=now,
                lease_until=_lease(c, now),
                limit=batch,
                returning=[outbound_events.c.id],
            )
        c.dispatcher.deliver_outbound([r.id for r in rows])
        return len(rows)

    return _log("due_outbound", _drain(one, batch))


def _log(name: str, count: int) -> int:
    if count:
        log.info("producer %s enqueued %d items", name, count)
    return count


# name -> (producer, the timing setting holding its interval)
PRODUCERS: dict[str, tuple[Callable[[Container, datetime], int], str]] = {
    "due_retries": (due_retries, "retry_scan_interval_s"),
    "due_steps": (due_steps, "reconcile_scan_interval_s"),
    "due_emails": (due_emails, "outbox_scan_interval_s"),
    "due_events": (due_events, "retry_scan_interval_s"),
    "unknown_outcomes": (unknown_outcomes, "retry_scan_interval_s"),
    "expiring_cards": (expiring_cards, "expiry_scan_interval_s"),
    "token_purge": (token_purge, "purge_scan_interval_s"),
    "due_outbound": (due_outbound, "outbox_scan_interval_s"),
}
