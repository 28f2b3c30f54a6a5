"""Delivering outbound events to the merchant's endpoints, one attempt per due event.

The POST itself goes through the :class:`~dunning.ports.WebhookSender` port; this module
decides when: a 2xx answer delivers, anything else is retried on a fixed schedule (about a day
in all, the same ``webhook-id`` each time), then the event fails and the endpoint is marked
failing until a delivery to it succeeds again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, func, select, update

from dunning.backoff import scheduled
from dunning.errors import TransientError
from dunning.ports import Pipeline
from dunning.services.outbound import ENABLED
from dunning.store.tables import outbound_events, webhook_endpoints
from dunning.webhooks.signatures import standard_headers

log = logging.getLogger(__name__)

# Waits after the 1st, 2nd, ... failed delivery: about 28 hours in all, then the event fails.
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 30, 2 * 60, 5 * 60, 10 * 60, 10 * 60))
# Stop starting deliveries after this long, well inside the actor's time limit; what is left
# stays claimed and is found again when the claim runs out.
BATCH_BUDGET_S = 200.0


def next_delay(failed_attempts: int) -> timedelta | None:
    """How long to wait after ``failed_attempts`` failed deliveries; ``None``: give up."""
    return scheduled(failed_attempts, RETRY_DELAYS)


def body_of(payload: Mapping[Any, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _claim(c: Pipeline, event_id: int, now: datetime) -> RowMapping | None:
    """Take one due event for a delivery attempt; ``None`` when it is not due or not ours."""
    with c.engine.begin() as conn:
        row = (
            conn.execute(
                select(
                    outbound_events,
                    webhook_endpoints.c.url,
                    webhook_endpoints.c.secret,
                    webhook_endpoints.c.status.label("endpoint_status"),
                )
                .join(webhook_endpoints, webhook_endpoints.c.id == outbound_events.c.endpoint_id)
                .where(outbound_events.c.id == event_id)
            )
            .mappings()
            .first()
        )
        if (
            row is None
            or row["status"] != "pending"
            or row["next_attempt_at"] > now
            or row["endpoint_status"] not in ENABLED
        ):
            return None
        # Moving next_attempt_at past the lease takes the row out of the due set: a duplicate
        # message finds it not due, and after a crash the producer finds it again.
        lease = now + timedelta(seconds=c.settings.timing.claim_lease_s)
        taken = conn.execute(
            update(outbound_events)
            .where(
                outbound_events.c.id == event_id,
                outbound_events.c.status == "pending",
                outbound_events.c.attempts == row["attempts"],
            )
            .values(attempts=row["attempts"] + 1, next_attempt_at=lease)
        ).rowcount
    return row if taken == 1 else None


def _post(c: Pipeline, row: RowMapping, now: datetime) -> str | None:
    """POST one event; ``None`` on a 2xx answer, else what went wrong."""
    body = body_of(row["payload"])
    headers = standard_headers(row["secret"], row["message_id"], int(now.timestamp()), body)
    headers["content-type"] = "application/json"
    try:
        status = c.webhook_sender.post(row["url"], body, headers)
    except TransientError as exc:
        return str(exc)[:500]
    if 200 <= status < 300:
        return None
    return f"HTTP {status}"


def deliver_one(c: Pipeline, event_id: int, now: datetime) -> str:
    """Make one delivery attempt of an outbound event. Returns what happened."""
    row = _claim(c, event_id, now)
    if row is None:
        return "skipped"
    error = _post(c, row, now)
    attempts = row["attempts"] + 1
    with c.engine.begin() as conn:
        if error is None:
            _finish(conn, event_id, status="delivered", delivered_at=now, last_error=None)
            conn.execute(
                update(webhook_endpoints)
                .where(webhook_endpoints.c.id == row["endpoint_id"])
                .where(webhook_endpoints.c.status == "failing")
                .values(status="active", failing_since=None, updated_at=now)
            )
            return "delivered"
        delay = next_delay(attempts)
        if delay is not None:
            _finish(conn, event_id, next_attempt_at=now + delay, last_error=error)
            log.info(
                "webhook %s to endpoint %s failed (%s); retry in %s",
                row["message_id"],
                row["endpoint_id"],
                error,
                delay,
            )
            return "retrying"
        _finish(conn, event_id, status="failed", last_error=error)
        conn.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == row["endpoint_id"])
            .values(
                status="failing",
                failing_since=func.coalesce(webhook_endpoints.c.failing_since, now),
                updated_at=now,
            )
        )
    log.warning(
        "webhook %s to endpoint %s failed for good after %d attempts: %s",
        row["message_id"],
        row["endpoint_id"],
        attempts,
        error,
    )
    return "failed"


def _finish(conn: Connection, event_id: int, **values: Any) -> None:
    # Guarded: an event cancelled meanwhile (its endpoint removed) stays cancelled.
    conn.execute(
        update(outbound_events)
        .where(outbound_events.c.id == event_id, outbound_events.c.status == "pending")
        .values(claimed_until=None, **values)
    )


def deliver(c: Pipeline, ids: Sequence[int]) -> dict[int, str]:
    """Deliver the due events among ``ids``, one attempt each; returns what happened to each.

    The clock is read per delivery: a signature's timestamp must be the time it is sent, and
    receivers refuse one more than five minutes off.
    """
    started = time.monotonic()
    results: dict[int, str] = {}
    for event_id in ids:
        if time.monotonic() - started > BATCH_BUDGET_S:
            break
        results[event_id] = deliver_one(c, int(event_id), c.clock.now())
    return results
