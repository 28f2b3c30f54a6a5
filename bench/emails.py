"""Emails rendered, recorded in the outbox and sent per second.

The outbox holds ``n`` pending "payment failed" emails (contexts as the pipeline stores them).
``dunning worker -p 4 -t 2`` runs the ``emails`` queue with SMTP to ``smtp-sink``; the clock
starts with the ``due_emails`` producer and stops when every row is marked sent. The baseline,
next to it: aiosmtplib sending one pre-rendered message over as many connections (one per
worker process, so four) to the same sink.

Four processes of two threads, not two of eight: each process sends over one SMTP connection
from one event-loop thread, which waits for the interpreter while the worker threads render
and write; with fewer threads per process the loop gets it sooner and the connections stay
busy (two processes of eight threads: 0.44-0.51 of the baseline; four of two: 0.50-0.63).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from bench import smtp_blast
from bench.book import load_book, queue_outbox
from bench.harness import (
    Count,
    Figure,
    Run,
    Sink,
    dunning_env,
    ratio,
    redis_db,
    scratch_database,
    smtp_sink,
    wait_until,
)
from bench.procs import dunning_worker_cmd, worker_group
from bench.queues import producer_container
from schedules.producers import due_emails

PROCESSES, THREADS = 4, 2
SENT = "SELECT count(*) FROM notifications WHERE status = 'sent'"


def send_outbox(r: Run, url: str, n: int, sink: Sink) -> dict[str, Any]:
    """Queue ``n`` emails, send them through the workers; return the rate."""
    now = datetime.now(UTC)
    load_book(url, subscriptions=n, due=n, now=now, history=False)
    queued = queue_outbox(url, now=now)
    if queued != n:
        raise RuntimeError(f"queued {queued} of {n} emails")
    cmd = dunning_worker_cmd(PROCESSES, THREADS, ["emails"])
    env = dunning_env(r, url, sink=sink)
    sent = Count(url, SENT)
    before = sink.delivered()
    try:
        with worker_group(cmd, env, log=r.workdir / "email-workers.log", processes=PROCESSES,
                          threads=THREADS), producer_container(r.redis_url, url) as c:  # fmt: skip
            started = time.monotonic()
            due_emails(c, datetime.now(UTC))
            finished = wait_until(lambda: sent() >= n, timeout_s=max(120, n / 20), what=SENT)
    finally:
        sent.close()
    accepted = sink.delivered() - before
    if accepted < n:
        raise RuntimeError(f"the sink accepted {accepted} of {n} emails")
    elapsed = finished - started
    return {
        "rate": round(n / elapsed, 1),
        "elapsed_s": round(elapsed, 3),
        "sink_accepted": accepted,
    }


def run(r: Run) -> list[Figure]:
    """Measure the outbox and the SMTP baseline against one sink."""
    n = r.size(20_000, 100)
    with smtp_sink(r.workdir) as sink:
        with redis_db(r.redis_url), scratch_database(r.pg_admin_url) as url:
            value = send_outbox(r, url, n, sink)
        env = dunning_env(r, "postgresql://unused/unused")
        base = smtp_blast.measure(sink.port, processes=PROCESSES, count=n, env=env)
    q = ratio(value["rate"], base["rate"])
    return [
        Figure(
            name="emails",
            title="emails rendered, recorded in the outbox and sent per second",
            value=value["rate"],
            unit="emails/s",
            target="ratio ≥ 0.7",
            baseline=base["rate"],
            baseline_unit="pre-rendered emails/s (aiosmtplib)",
            ratio=q,
            met=q >= 0.7,
            details={
                "emails": n,
                "processes": PROCESSES,
                "threads": THREADS,
                "smtp_connections": PROCESSES,
                "figure": value,
                "baseline": base,
            },
        )
    ]
