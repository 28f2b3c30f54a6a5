"""Names and tables the baselines share between the harness and their worker processes."""

from __future__ import annotations

# bench.baseline_worker: one UPDATE and one INSERT per message.
QUEUE = "bench"
ACTOR = "touch"
TABLES = """
CREATE TABLE IF NOT EXISTS bench_rows (id integer PRIMARY KEY, n integer NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS bench_log (
    id bigserial PRIMARY KEY,
    row_id integer NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""
