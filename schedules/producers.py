"""Producers: find due work in the database, claim it, enqueue it in bulk. Nothing else.

Each scan reads a partial index of due rows in batches, so its cost grows with the due work,
not with the size of the book. ``now`` is passed in: the scheduler reads the clock, the
simulation passes its virtual one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, exists, or_, select
from sqlalchemy.sql.elements import ColumnElement

from dunning.bootstrap import Container
from dunning.services import expiry, purge
from dunning.store.tables import (
    customers,
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


def _claim_and_dispatch(
    c: Container,
    now: datetime,
    name: str,
    table: Table,
    *,
    due: Sequence[ColumnElement[bool]],
    order_by: Any,
    claim_column: str,
    returning: Sequence[Any],
    dispatch: Callable[[list[Any]], None],
) -> int:
    """Claim due rows of ``table`` batch by batch and hand each batch to ``dispatch``.

    Each batch is claimed in its own transaction and dispatched after it commits, so a message
    is never sent for a claim that was rolled back. Stops after a short batch or
    ``MAX_BATCHES_PER_RUN`` batches; returns (and logs) how many rows were claimed.
    """
    batch = c.settings.timing.scan_batch
    total = 0
    for _ in range(MAX_BATCHES_PER_RUN):
        with c.engine.begin() as conn:
            rows = claim_due(
                conn,
                table,
                due=due,
                order_by=order_by,
                claim_column=claim_column,
                now=now,
                lease_until=_lease(c, now),
                limit=batch,
                returning=returning,
            )
        dispatch(rows)
        total += len(rows)
        if len(rows) < batch:
            break
    return _log(name, total)


def _customer_not_paused() -> ColumnElement[bool]:
    """A customer's hold keeps its invoices' retries and steps from being enqueued."""
    return ~exists().where(
        customers.c.id == invoices.c.customer_id, customers.c.dunning_paused.is_(True)
    )


def due_retries(c: Container, now: datetime) -> int:
    """Enqueue the charge retries that are due."""
    return _claim_and_dispatch(
        c,
        now,
        "due_retries",
        invoices,
        due=[
            invoices.c.status == "open",
            invoices.c.next_attempt_at.is_not(None),
            invoices.c.next_attempt_at <= now,
            invoices.c.paused.is_(False),
            _customer_not_paused(),
        ],
        order_by=invoices.c.next_attempt_at,
        claim_column="retry_claimed_until",
        returning=[invoices.c.id, invoices.c.attempt_count],
        dispatch=lambda rows: c.dispatcher.retry_charges(
            [(r.id, int(r.attempt_count) + 1) for r in rows]
        ),
    )


def due_steps(c: Container, now: datetime) -> int:
    """Enqueue reminders, final notices and suspensions that are due."""
    return _claim_and_dispatch(
        c,
        now,
        "due_steps",
        invoices,
        due=[
            invoices.c.status == "open",
            invoices.c.next_step_at.is_not(None),
            invoices.c.next_step_at <= now,
            _customer_not_paused(),
        ],
        order_by=invoices.c.next_step_at,
        claim_column="step_claimed_until",
        returning=[invoices.c.id],
        dispatch=lambda rows: c.dispatcher.run_steps([r.id for r in rows]),
    )


def due_emails(c: Container, now: datetime) -> int:
    """Enqueue outbox rows that are due (after quiet hours, or a failed send's backoff)."""
    return _claim_and_dispatch(
        c,
        now,
        "due_emails",
        notifications,
        due=[
            notifications.c.status == "pending",
            notifications.c.not_before <= now,
            # A row whose send was deferred (SMTP down) is left unclaimed until its backoff
            # ends: claimed now, it would wait for the whole enqueue lease instead.
            or_(notifications.c.claimed_until.is_(None), notifications.c.claimed_until <= now),
        ],
        order_by=notifications.c.not_before,
        claim_column="enqueued_until",
        returning=[notifications.c.id],
        dispatch=lambda rows: c.dispatcher.send_notifications([r.id for r in rows]),
    )


def due_events(c: Container, now: datetime) -> int:
    """Enqueue stored webhook events not yet processed (their first message may be lost)."""
    return _claim_and_dispatch(
        c,
        now,
        "due_events",
        webhook_events,
        due=[webhook_events.c.status == "received"],
        order_by=webhook_events.c.received_at,
        claim_column="claimed_until",
        returning=[webhook_events.c.id],
        dispatch=lambda rows: c.dispatcher.process_events([r.id for r in rows]),
    )


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
    return _claim_and_dispatch(
        c,
        now,
        "due_outbound",
        outbound_events,
        due=[
            outbound_events.c.status == "pending",
            outbound_events.c.next_attempt_at <= now,
        ],
        order_by=outbound_events.c.next_attempt_at,
        claim_column="claimed_until",
        returning=[outbound_events.c.id],
        dispatch=lambda rows: c.dispatcher.deliver_outbound([r.id for r in rows]),
    )


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
