"""A 100,000-customer book into PostgreSQL: it loads in seconds and a re-import writes nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from bench.make_book import write_book
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from dunning.store.tables import (
    audit_log,
    customers,
    invoices,
    notifications,
    payment_attempts,
    payment_methods,
    subscriptions,
)
from tests.importing import load
from tests.services import scratch_pg_database

pytestmark = pytest.mark.integration

CUSTOMERS = 100_000
NOW = datetime(2026, 2, 1, tzinfo=UTC)


def snapshot(engine: Engine) -> dict[str, tuple[int, datetime | None]]:
    """Row count and newest ``updated_at`` (or ``at``) of every table the import writes."""
    out = {}
    with engine.connect() as conn:
        for table in (customers, payment_methods, subscriptions, invoices, audit_log):
            stamp = table.c.at if table is audit_log else table.c.updated_at
            count, newest = conn.execute(select(func.count(), func.max(stamp))).one()
            out[table.name] = (count, newest)
        for table in (payment_attempts, notifications):
            count, newest = conn.execute(select(func.count(), func.max(table.c.created_at))).one()
            out[table.name] = (count, newest)
        imported = audit_log.c.kind == "invoice_imported"
        out["invoice_imported"] = (conn.scalar(select(func.count()).where(imported)) or 0, None)
    return out


def test_a_100k_book_loads_and_a_reimport_changes_nothing(tmp_path: Path) -> None:
    # Invoices that first failed in the ten days before: their dunning is still under way.
    book = write_book(tmp_path / "book.jsonl", CUSTOMERS, seed=1, start=NOW - timedelta(hours=1))
    with scratch_pg_database() as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            started = time.perf_counter()
            first = load(engine, book, now=NOW)
            load_s = time.perf_counter() - started
            loaded = snapshot(engine)
            started = time.perf_counter()
            again = load(engine, book, now=NOW + timedelta(days=1))
            reimport_s = time.perf_counter() - started
            after = snapshot(engine)
        finally:
            engine.dispose()
    print(
        f"\nimport {CUSTOMERS} customers: {load_s:.1f} s ({CUSTOMERS / load_s:,.0f} lines/s); "
        f"re-import {reimport_s:.1f} s ({CUSTOMERS / reimport_s:,.0f} lines/s)"
    )
    assert (first.inserted, first.refused_lines) == (CUSTOMERS, 0)
    assert loaded["customers"] == (CUSTOMERS, NOW)
    assert loaded["invoices"][0] == loaded["invoice_imported"][0] > CUSTOMERS // 50
    # Each imported invoice's failed charges are attempts, and its customer was told once.
    assert loaded["payment_attempts"][0] > loaded["invoices"][0]
    assert loaded["notifications"][0] == loaded["invoices"][0]
    assert (again.unchanged, again.updated, again.inserted) == (CUSTOMERS, 0, 0)
    assert after == loaded
