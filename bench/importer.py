"""``dunning import`` records per second into PostgreSQL.

A book from :mod:`bench.make_book` (one customer per JSON line, with cards, subscriptions and
sometimes an invoice in dunning) is loaded by the real CLI into a scratch database; the rate
is the lines (customer records) per second the command reports, which excludes its start-up.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from typing import Any

from bench.harness import Figure, Run, count, die_with_parent, dunning_env, python, scratch_database
from bench.make_book import write_book

TABLES = (
    "customers",
    "payment_methods",
    "subscriptions",
    "invoices",
    "payment_attempts",
    "audit_log",
)


def run(r: Run) -> list[Figure]:
    """Write a book, import it, read the command's own summary."""
    customers = r.size(50_000, 500)
    # Invoices in dunning that first failed in the last ten days: each import continues them
    # (attempts, the next retry or the stop, the first email), as it would a real book's.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    book = write_book(r.workdir / "book.jsonl", customers, seed=7, start=today)
    with scratch_database(r.pg_admin_url) as url:
        proc = subprocess.run(
            [python(), "-m", "dunning.cli.main", "import", str(book), "--json"],
            env=dunning_env(r, url),
            cwd=r.workdir,
            capture_output=True,
            text=True,
            timeout=1800,
            preexec_fn=die_with_parent,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"dunning import exited {proc.returncode}: {proc.stderr[-2000:]}")
        summary: dict[str, Any] = json.loads(proc.stdout)
        rows = {t: count(url, f"SELECT count(*) FROM {t}") for t in TABLES}
    if summary.get("loaded") != customers:
        raise RuntimeError(f"dunning import loaded {summary.get('loaded')} of {customers}")
    rate = customers / summary["elapsed_s"]
    return [
        Figure(
            name="import",
            title="`dunning import` records (customer lines) per second into PostgreSQL",
            value=round(rate, 1),
            unit="records/s",
            target="≥ 10,000 records/s",
            met=rate >= 10_000,
            details={
                "customers": customers,
                "rows": rows,
                "rows_per_s": round(sum(rows.values()) / summary["elapsed_s"], 1),
                "summary": summary,
            },
        )
    ]
