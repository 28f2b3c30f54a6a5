"""The producers' enqueue rate: due items claimed and enqueued per second.

The figure runs the ``due_retries`` producer over a book with ``due`` retries due (claims in
the database, batched messages on the Redis broker). The baseline sends the same number of
items with ``actor.send``, one message per item, one at a time, on the same broker.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.book import load_book
from bench.harness import Figure, Run, ratio, redis_db, scratch_database
from bench.producer import RESET
from bench.queues import producer_container
from schedules.producers import due_retries

REPEATS = 3


def run(r: Run) -> list[Figure]:
    """Measure the producer's item rate and ``actor.send``'s message rate."""
    due = r.size(10_000, 200)
    rates: list[float] = []
    sends: list[float] = []
    with redis_db(r.redis_url) as client, scratch_database(r.pg_admin_url) as url:
        load_book(url, subscriptions=2 * due, due=due, now=datetime.now(UTC), history=False)
        with (
            psycopg.connect(url, autocommit=True) as conn,
            producer_container(r.redis_url, url) as c,
        ):
            actor: Any = c.dispatcher.broker.get_actor("charge_retry")  # type: ignore[attr-defined]
            for _ in range(REPEATS):
                conn.execute(RESET)
                client.flushdb()
                started = time.perf_counter()
                found = due_retries(c, datetime.now(UTC))
                rates.append(found / (time.perf_counter() - started))
                client.flushdb()
                started = time.perf_counter()
                for i in range(1, due + 1):
                    actor.send([[f"in_{i}", 2]])
                sends.append(due / (time.perf_counter() - started))
            client.flushdb()
    value, base = statistics.median(rates), statistics.median(sends)
    q = ratio(value, base)
    return [
        Figure(
            name="enqueue_rate",
            title="enqueue rate of the producers (items claimed and enqueued per second)",
            value=round(value, 1),
            unit="items/s",
            target="ratio ≥ 3",
            baseline=round(base, 1),
            baseline_unit="messages/s (actor.send, one at a time)",
            ratio=q,
            met=q >= 3,
            details={
                "due": due,
                "runs": REPEATS,
                "producer_rates": [round(x) for x in rates],
                "send_rates": [round(x) for x in sends],
            },
        )
    ]
