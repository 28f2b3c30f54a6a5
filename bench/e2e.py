"""End-to-end dunning cases per second: failed invoice → retry charge → email delivered.

Each case is an invoice whose first charge failed and whose retry is due. ``dunning worker -p 2
-t 8`` runs the ``charges`` and ``emails`` queues with SMTP to ``smtp-sink``; the clock starts
with the ``due_retries`` producer and stops when every case's "payment recovered" email has been
accepted by the sink and marked sent. The baseline, next to it: aiosmtplib sending one
pre-rendered message from as many processes, one connection each, to the same sink.
"""

from __future__ import annotations

from bench import smtp_blast
from bench.harness import (
    Figure,
    Run,
    dunning_env,
    ratio,
    redis_db,
    scratch_database,
    smtp_sink,
)
from bench.retry_charges import PROCESSES, THREADS, drive_retries

SENT = "SELECT count(*) FROM notifications WHERE kind = 'payment_recovered' AND status = 'sent'"


def run(r: Run) -> list[Figure]:
    """Measure the cases and the SMTP baseline against one sink."""
    n = r.size(20_000, 100)
    with smtp_sink(r.workdir) as sink:
        with redis_db(r.redis_url), scratch_database(r.pg_admin_url) as url:
            before = sink.delivered()
            value = drive_retries(r, url, n, queues=["charges", "emails"], done_sql=SENT, sink=sink)
            value["sink_accepted"] = sink.delivered() - before
        if value["sink_accepted"] < n:
            raise RuntimeError(f"the sink accepted {value['sink_accepted']} of {n} emails")
        env = dunning_env(r, "postgresql://unused/unused")
        base = smtp_blast.measure(sink.port, processes=PROCESSES, count=n, env=env)
    q = ratio(value["rate"], base["rate"])
    return [
        Figure(
            name="e2e_cases",
            title="end-to-end dunning cases per second (failed invoice → retry charge → "
            "email delivered)",
            value=value["rate"],
            unit="cases/s",
            target="ratio ≥ 0.4",
            baseline=base["rate"],
            baseline_unit="pre-rendered emails/s (aiosmtplib)",
            ratio=q,
            met=q >= 0.4,
            details={
                "cases": n,
                "processes": PROCESSES,
                "threads": THREADS,
                "smtp_connections": PROCESSES,
                "figure": value,
                "baseline": base,
            },  # fmt: skip
        )
    ]
