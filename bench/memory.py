"""Worker memory: RSS of each ``dunning worker`` process after 50,000 and 100,000 jobs.

A job is one ``charge_retry`` message of one invoice. Each half of the run visits its own pool
of due invoices over and over: the first visit charges the invoice and sends the "payment
recovered" email through ``smtp-sink``, later visits find it paid and skip it. RSS comes from
``/proc/<pid>/status`` once the queues are drained.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dramatiq

from bench.book import load_book
from bench.harness import (
    Figure,
    Run,
    dunning_env,
    redis_db,
    scratch_database,
    smtp_sink,
    wait_until,
)
from bench.procs import dunning_worker_cmd, worker_group
from bench.queues import drained, enqueue_pipelined
from workers.broker import make_broker

PROCESSES, THREADS = 2, 8


def _jobs(first: int, pool: int, count: int) -> list[dramatiq.Message[Any]]:
    return [
        dramatiq.Message(
            queue_name="charges",
            actor_name="charge_retry",
            args=([[f"in_{first + i % pool}", 2]],),
            kwargs={},
            options={},
        )
        for i in range(count)
    ]


def run(r: Run) -> list[Figure]:
    """Run the jobs in two halves and sample RSS after each."""
    jobs, pool = r.size(100_000, 1_000), r.size(2_500, 50)
    half = jobs // 2
    samples: list[list[float]] = []
    with (
        smtp_sink(r.workdir) as sink,
        redis_db(r.redis_url) as client,
        scratch_database(r.pg_admin_url) as url,
    ):
        load_book(url, subscriptions=2 * pool, due=2 * pool, now=datetime.now(UTC), history=False)
        cmd = dunning_worker_cmd(PROCESSES, THREADS, ["charges", "emails"])
        env = dunning_env(r, url, sink=sink)
        broker = make_broker(r.redis_url)
        try:
            with worker_group(cmd, env, log=r.workdir / "memory-workers.log",
                              processes=PROCESSES, threads=THREADS) as group:  # fmt: skip
                samples.append(group.rss_mb())
                for k in range(2):
                    enqueue_pipelined(broker, _jobs(1 + k * pool, pool, half))  # type: ignore[arg-type]
                    wait_until(lambda: drained(client, "charges") and drained(client, "emails"),
                               timeout_s=max(300, half / 20), what="jobs", poll_s=0.5)  # fmt: skip
                    samples.append(group.rss_mb())
        finally:
            broker.close()
    start, at_half, at_end = samples
    peak = max(at_end)
    growth = max(b - a for a, b in zip(at_half, at_end, strict=True))
    return [
        Figure(
            name="worker_memory",
            title=f"worker memory (RSS) after {jobs:,} jobs; growth from {half:,} to {jobs:,}",
            value=peak,
            unit="MB",
            target="< 150 MB; growth < 10 MB",
            ratio=None,
            met=peak < 150 and growth < 10,
            details={
                "jobs": jobs,
                "invoices_charged": 2 * pool,
                "rss_mb_ready": start,
                "rss_mb_half": at_half,
                "rss_mb_end": at_end,
                "growth_mb": round(growth, 1),
            },
        )
    ]
