"""The producer: claim and enqueue the due work of a large book, and how that scales.

Two books hold the same due work (``due`` invoices with a retry due): one of 100,000
subscriptions and one of 1,000,000 (1 % due), each with a paid invoice of history per
subscription and as many open invoices whose retry is later. The figure times the real
``due_retries`` producer (set-based claims, batched messages on the Redis broker); the baseline,
on the same rows, is one ``UPDATE … RETURNING`` plus a pipelined raw ``LPUSH`` of as many
messages. Each is the median of several runs, with the claims and the queue reset in between.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis

from bench.book import load_book
from bench.harness import Figure, Run, redis_db, scratch_database
from bench.queues import producer_container
from schedules.producers import due_retries

REPEATS = 5
RESET = b"UPDATE invoices SET retry_claimed_until = NULL WHERE retry_claimed_until IS NOT NULL"
CLAIM_ALL = b"""
UPDATE invoices SET retry_claimed_until = %(lease)s
WHERE status = 'open' AND next_attempt_at IS NOT NULL AND next_attempt_at <= %(now)s
  AND NOT paused AND (retry_claimed_until IS NULL OR retry_claimed_until <= %(now)s)
RETURNING id, attempt_count
"""


def _median(measure: Callable[[], float], reset: Callable[[], None]) -> float:
    times = []
    for _ in range(REPEATS):
        reset()
        times.append(measure())
    return statistics.median(times)


def measure_book(r: Run, subscriptions: int, due: int) -> dict[str, Any]:
    """Time the producer and the baseline on one book; return both (seconds) and counts."""
    with redis_db(r.redis_url) as client, scratch_database(r.pg_admin_url) as url:
        now = datetime.now(UTC)
        t0 = time.monotonic()
        load_book(url, subscriptions=subscriptions, due=due, later=due, now=now)
        load_s = time.monotonic() - t0
        with (
            psycopg.connect(url, autocommit=True) as conn,
            producer_container(r.redis_url, url) as c,
        ):

            def reset() -> None:
                conn.execute(RESET)
                client.flushdb()

            sent: list[int] = []

            def producer() -> float:
                started = time.perf_counter()
                found = due_retries(c, datetime.now(UTC))
                elapsed = time.perf_counter() - started
                if found != due:
                    raise RuntimeError(f"the producer enqueued {found} of {due}")
                sent.append(int(client.llen("dramatiq:charges")))
                return elapsed

            producer_s = _median(producer, reset)
            ids = client.lrange("dramatiq:charges", 0, -1)
            bodies = [_raw(client.hget("dramatiq:charges.msgs", i)) for i in ids]

            def baseline() -> float:
                return _baseline_once(conn, client, bodies, due)

            baseline_s = _median(baseline, reset)
    return {"subscriptions": subscriptions, "due": due, "producer_s": round(producer_s, 4),
            "baseline_s": round(baseline_s, 4), "messages": sent[-1], "load_s": round(load_s, 1),
            "runs": REPEATS}  # fmt: skip


def _raw(value: bytes | str | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


def _baseline_once(
    conn: psycopg.Connection[Any], client: redis.Redis, bodies: list[bytes], due: int
) -> float:
    now = datetime.now(UTC)
    started = time.perf_counter()
    rows = conn.execute(CLAIM_ALL, {"now": now, "lease": now + timedelta(minutes=10)}).fetchall()
    pipe = client.pipeline(transaction=False)
    for body in bodies:
        pipe.lpush("bench:baseline", body)
    pipe.execute()
    elapsed = time.perf_counter() - started
    if len(rows) != due:
        raise RuntimeError(f"the baseline claimed {len(rows)} of {due}")
    return elapsed


def run(r: Run) -> list[Figure]:
    """The producer on the large book, and the same due work on a book ten times smaller."""
    due = r.size(10_000, 100)
    big = measure_book(r, r.size(1_000_000, 10_000), due)
    small = measure_book(r, r.size(100_000, 1_000), due)
    q = round(big["producer_s"] / big["baseline_s"], 3)
    scaling = round(big["producer_s"] / small["producer_s"], 3)
    return [
        Figure(
            name="producer",
            title=f"producer: claim and enqueue the due work ({due:,} due) in a book of "
            f"{big['subscriptions']:,} subscriptions",
            value=round(big["producer_s"] * 1000, 1),
            unit="ms",
            target="time ≤ 2× baseline",
            baseline=round(big["baseline_s"] * 1000, 1),
            baseline_unit="ms (UPDATE … RETURNING + pipelined LPUSH)",
            ratio=q,
            met=q <= 2.0,
            details={"book": big},
        ),
        Figure(
            name="producer_scaling",
            title=f"producer scaling: the same due work in books of {small['subscriptions']:,} "
            f"and {big['subscriptions']:,} subscriptions",
            value=scaling,
            unit="× (large / small)",
            target="time ratio ≤ 1.3",
            ratio=scaling,
            met=scaling <= 1.3,
            details={"small": small, "large": big},
        ),
    ]
