"""End-to-end dunning cases per second: failed invoice → retry charge → email delivered.

Each case is an invoice whose first charge failed and whose retry is due. ``dunning worker -p 2
-t 8`` runs the ``charges`` and ``emails`` queues with SMTP to ``smtp-sink``; the clock starts
with the ``due_retries`` producer and stops when every case's "payment recovered" email has been
accepted by the sink and marked sent. The baseline, next to it, does the same work at the
least: per case one PostgreSQL transaction (an UPDATE and an INSERT) and one pre-rendered email,
in a ``dramatiq`` actor with the same processes, threads and broker, over one reused aiosmtplib
connection per process to the same sink (``bench.baseline_e2e_worker``).
"""

from __future__ import annotations

from bench.harness import Figure, Run, ratio, redis_db, scratch_database, smtp_sink
from bench.retry_charges import PROCESSES, THREADS, baseline_rate, drive_retries

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
        with redis_db(r.redis_url), scratch_database(r.pg_admin_url) as url:
            base = baseline_rate(r, url, n, module="bench.baseline_e2e_worker", sink=sink)
    q = ratio(value["rate"], base["rate"])
    return [
        Figure(
            name="e2e_cases",
            title="end-to-end dunning cases per second (failed invoice → retry charge → "
            "email delivered)",
            value=value["rate"],
            unit="cases/s",
            target="ratio ≥ 0.6",
            baseline=base["rate"],
            baseline_unit="cases/s, one transaction + one pre-rendered email each",
            ratio=q,
            met=q >= 0.6,
            details={
                "cases": n,
                "processes": PROCESSES,
                "threads": THREADS,
                "smtp_connections": PROCESSES,
                "figure": value,
                "baseline": base,
            },
        )
    ]
