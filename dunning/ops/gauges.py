"""Prometheus gauges of the pipeline's state: queue depths, the funnel, backlogs and lag.

Workers count what they do (``workers.metrics``); these gauges say what is waiting. They are
set just before ``/metrics`` is rendered, each source (the broker's queues; the funnel, a pass
over the open invoices) read at most every ``READ_MIN_INTERVAL_S`` per container whatever the
scrape rate: a scrape in between shows the values of the last read.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from datetime import datetime

from prometheus_client import Gauge
from sqlalchemy.exc import SQLAlchemyError

from dunning.bootstrap import Container
from dunning.broker_names import broker_kind
from dunning.ops.brokers import BrokerUnavailable, reading
from dunning.ops.funnel import funnel

log = logging.getLogger(__name__)

READ_MIN_INTERVAL_S = 15.0

QUEUE_MESSAGES = Gauge(
    "dunning_queue_messages",
    "Messages in the broker's queues by state (ready, delayed, in_flight, orphaned, dead)",
    ["queue", "state"],
)
QUEUE_OLDEST = Gauge(
    "dunning_queue_oldest_ready_age_seconds",
    "Age of the oldest ready message of each queue (0 when empty)",
    ["queue"],
)
FUNNEL_INVOICES = Gauge("dunning_funnel_invoices", "Invoices in each dunning stage", ["stage"])
FUNNEL_AMOUNT = Gauge(
    "dunning_funnel_amount_minor",
    "Amounts in each dunning stage, in minor units per currency",
    ["stage", "currency"],
)
SUSPENDED = Gauge("dunning_suspended_subscriptions", "Subscriptions suspended")
BACKLOG_DUE = Gauge("dunning_backlog_due", "Items due now and not yet done, per producer", ["work"])
PRODUCER_LAG = Gauge(
    "dunning_producer_lag_seconds",
    "How late the oldest due item of each producer is (0 when none is due)",
    ["work"],
)
OUTBOX_PENDING = Gauge("dunning_outbox_pending", "Emails queued and not yet sent")
OUTBOX_OLDEST = Gauge(
    "dunning_outbox_oldest_pending_age_seconds", "Age of the oldest pending email's send time"
)
OUTBOUND_FAILED = Gauge("dunning_outbound_failed", "Merchant webhooks that failed for good")
EVENTS_FAILED = Gauge(
    "dunning_events_failed", "Gateway webhook events that failed for good (dunning dlq list)"
)
REFUNDS_DUE = Gauge(
    "dunning_refunds_due_amount_minor",
    "Money collected that was not owed and waits for a refund, in minor units per currency",
    ["currency"],
)
SOURCE_UP = Gauge(
    "dunning_ops_source_up", "Whether the last read of a source worked (1) or not (0)", ["source"]
)

_lock = threading.Lock()
# Per container and source (a weak reference tells a new container from an old one at the
# same id).
_read_at: dict[tuple[int, str], tuple[weakref.ref[Container], float]] = {}


def _due(c: Container, source: str, force: bool) -> bool:
    """Whether ``source`` is to be read now; if so, the read is stamped before it starts, so
    concurrent scrapes do not read it too."""
    with _lock:
        ref, last = _read_at.get((id(c), source), (None, 0.0))
        fresh = ref is not None and ref() is c and time.monotonic() - last < READ_MIN_INTERVAL_S
        if fresh and not force:
            return False
        _read_at[(id(c), source)] = (weakref.ref(c), time.monotonic())
        return True


def refresh_queues(
    c: Container, queues: Sequence[str], now: datetime, *, force: bool = False
) -> None:
    """Set the queue gauges from the broker (nothing for the in-process stub); a count the
    broker does not give (RabbitMQ's in flight) is left unset. Skipped if read a while ago."""
    if not _due(c, "queues", force):
        return
    try:
        with reading(c.settings) as view:
            if view is None:
                return
            source = view.kind
            stats = view.queues(queues, now_ms=int(now.timestamp() * 1000))
    except BrokerUnavailable as exc:
        log.warning("queue gauges not refreshed: %s", exc)
        SOURCE_UP.labels(broker_kind(c.settings.broker_url)).set(0)
        return
    SOURCE_UP.labels(source).set(1)
    for s in stats:
        for state in ("ready", "delayed", "in_flight", "orphaned", "dead"):
            value = getattr(s, state)
            if value is not None:
                QUEUE_MESSAGES.labels(s.queue, state).set(value)
        QUEUE_OLDEST.labels(s.queue).set(s.oldest_ready_age_s or 0.0)


def refresh_funnel(c: Container, now: datetime, *, force: bool = False) -> bool:
    """Set the funnel, backlog and lag gauges; skipped if read less than a while ago."""
    if not _due(c, "funnel", force):
        return False
    try:
        with c.engine.connect() as conn:
            f = funnel(conn, c.policy, now)
    except SQLAlchemyError as exc:
        log.warning("funnel gauges not refreshed: %s", exc)
        SOURCE_UP.labels("database").set(0)
        return False
    SOURCE_UP.labels("database").set(1)
    FUNNEL_AMOUNT.clear()
    for name, stage in f.stages.items():
        FUNNEL_INVOICES.labels(name).set(stage.count)
        for currency, amount in stage.amounts.items():
            FUNNEL_AMOUNT.labels(name, currency).set(amount)
    SUSPENDED.set(f.suspended_subscriptions)
    for work, backlog in f.backlogs.items():
        BACKLOG_DUE.labels(work).set(backlog.due)
        PRODUCER_LAG.labels(work).set(backlog.lag_s)
    OUTBOX_PENDING.set(f.outbox_pending)
    oldest = f.outbox_oldest_pending_at
    OUTBOX_OLDEST.set(max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
    OUTBOUND_FAILED.set(f.outbound_failed)
    EVENTS_FAILED.set(f.events_failed)
    REFUNDS_DUE.clear()
    for currency, amount in f.refunds_due.amounts.items():
        REFUNDS_DUE.labels(currency).set(amount)
    return True


def refresh(c: Container, queues: Sequence[str], now: datetime, *, force: bool = False) -> None:
    """Refresh every gauge this module owns."""
    refresh_queues(c, queues, now, force=force)
    refresh_funnel(c, now, force=force)
