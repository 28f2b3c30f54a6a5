"""Retry charges per second: due invoice → sandbox charge → state written, ``-p 2``.

The figure: a book whose every subscription has an invoice with a retry due; ``dunning worker
-p 2 -t 8`` on the ``charges`` queue; the clock starts when the ``due_retries`` producer starts
and stops when every invoice's retry has its answer written. The baseline, next to it: a
``dramatiq`` actor doing one UPDATE and one INSERT per message, same broker and flags.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import dramatiq
import psycopg

from bench import baselines
from bench.book import load_book
from bench.harness import (
    Count,
    Figure,
    Run,
    Sink,
    count,
    dunning_env,
    ratio,
    redis_db,
    scratch_database,
    wait_until,
)
from bench.procs import dramatiq_cmd, dunning_worker_cmd, worker_group
from bench.queues import enqueue_pipelined, producer_container
from schedules.producers import due_retries
from workers.broker import make_broker

PROCESSES, THREADS = 2, 8
TITLE = "retry charges per second (due invoice → sandbox charge → state written)"
ANSWERED = "SELECT count(*) FROM payment_attempts WHERE attempt_no = 2 AND status <> 'pending'"


def drive_retries(
    r: Run, url: str, n: int, *, queues: list[str], done_sql: str, sink: Sink | None = None
) -> dict[str, Any]:
    """Load ``n`` invoices with a retry due, start ``dunning worker`` on ``queues``, run the
    ``due_retries`` producer and time until ``done_sql`` counts ``n``; return the rate."""
    load_book(url, subscriptions=n, due=n, now=datetime.now(UTC), history=False)
    cmd = dunning_worker_cmd(PROCESSES, THREADS, queues)
    log = r.workdir / ("workers-" + "-".join(queues) + ".log")
    done = Count(url, done_sql)
    try:
        with worker_group(cmd, dunning_env(r, url, sink=sink), log=log, processes=PROCESSES,
                          threads=THREADS), producer_container(r.redis_url, url) as c:  # fmt: skip
            started = time.monotonic()
            enqueued = due_retries(c, datetime.now(UTC))
            produced = time.monotonic()
            finished = wait_until(lambda: done() >= n, timeout_s=max(120, n / 20), what=done_sql)
    finally:
        done.close()
    charged = count(url, "SELECT count(*) FROM sandbox_ledger")
    paid = count(url, "SELECT count(*) FROM invoices WHERE status = 'paid'")
    if not enqueued == charged == paid == n:
        raise RuntimeError(f"enqueued {enqueued}, charged {charged}, paid {paid} of {n}")
    elapsed = finished - started
    return {"rate": round(n / elapsed, 1), "elapsed_s": round(elapsed, 3),
            "producer_s": round(produced - started, 3)}  # fmt: skip


def baseline_rate(
    r: Run,
    url: str,
    n: int,
    *,
    module: str = "bench.baseline_worker",
    sink: Sink | None = None,
) -> dict[str, Any]:
    """``n`` messages through a baseline actor of ``module`` (one transaction each, and one
    email each when a ``sink`` is given: then the clock stops when the sink has them all);
    return its rate."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(baselines.TABLES.encode())
        conn.execute(b"INSERT INTO bench_rows (id) SELECT generate_series(1, %s::int)", (n,))
    cmd = dramatiq_cmd(module, PROCESSES, THREADS, [baselines.QUEUE])
    log = r.workdir / f"baseline-workers-{module.rpartition('.')[2]}.log"
    broker = make_broker(r.redis_url)
    messages: list[dramatiq.Message[Any]] = [
        dramatiq.Message(
            queue_name=baselines.QUEUE, actor_name=baselines.ACTOR, args=(i,), kwargs={}, options={}
        )
        for i in range(1, n + 1)
    ]
    logged = Count(url, "SELECT count(*) FROM bench_log")
    before = sink.delivered() if sink is not None else 0
    done = (lambda: sink.delivered() - before >= n) if sink is not None else (lambda: logged() >= n)
    try:
        with worker_group(
            cmd, dunning_env(r, url, sink=sink), log=log, processes=PROCESSES, threads=THREADS
        ):
            started = time.monotonic()
            enqueue_pipelined(broker, messages)  # type: ignore[arg-type]
            finished = wait_until(done, timeout_s=max(120, n / 20), what="baseline messages")
    finally:
        logged.close()
        broker.close()
    elapsed = finished - started
    return {"rate": round(n / elapsed, 1), "elapsed_s": round(elapsed, 3)}


def run(r: Run) -> list[Figure]:
    """Measure the figure and its baseline, each in a scratch database of its own."""
    n = r.size(20_000, 100)
    with redis_db(r.redis_url), scratch_database(r.pg_admin_url) as url:
        value = drive_retries(r, url, n, queues=["charges"], done_sql=ANSWERED)
    with redis_db(r.redis_url), scratch_database(r.pg_admin_url) as url:
        base = baseline_rate(r, url, n)
    q = ratio(value["rate"], base["rate"])
    return [
        Figure(
            name="retry_charges",
            title=TITLE,
            value=value["rate"],
            unit="charges/s",
            target="ratio ≥ 0.5",
            baseline=base["rate"],
            baseline_unit="messages/s, one UPDATE + one INSERT each",
            ratio=q,
            met=q >= 0.5,
            details={
                "invoices": n,
                "processes": PROCESSES,
                "threads": THREADS,
                "figure": value,
                "baseline": base,
            },
        )
    ]
