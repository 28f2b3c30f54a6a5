"""``dunning import``'s two ways of writing a chunk store the same rows.

On PostgreSQL a chunk whose customers are all new is COPYed straight into the tables; any other
chunk is COPYed into staging tables and upserted from there. SQLite reads every chunk from one
JSON parameter. Whichever way a chunk goes, the database must end up the same.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, text

from bench.make_book import book_lines
from dunning.imports.run import GC_THRESHOLD
from dunning.store.engine import make_engine
from dunning.store.tables import (
    audit_log,
    customers,
    invoices,
    metadata,
    payment_attempts,
    payment_methods,
    subscriptions,
)
from tests.importing import load

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)
WRITTEN = (customers, payment_methods, subscriptions, invoices, payment_attempts, audit_log)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """The session's PostgreSQL database, emptied."""
    eng = make_engine(pg_url)
    _empty(eng)
    yield eng
    eng.dispose()


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # the session's database: other tests wrote
            names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        for table in reversed(WRITTEN):
            conn.execute(delete(table))


def book(tmp_path: Path, customers_n: int, *, name: str = "book.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(book_lines(customers_n, seed=3)) + "\n", encoding="utf-8")
    return path


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row the import writes, as read back (audit and attempt rows without their serial
    id)."""
    out = {}
    with engine.connect() as conn:
        for table in WRITTEN:
            rows = [dict(r) for r in conn.execute(select(table)).mappings()]
            for r in rows:
                if table in (audit_log, payment_attempts):
                    del r["id"]
            out[table.name] = sorted(rows, key=lambda r: json.dumps(r, default=str))
    return out


def test_a_chunk_holding_a_stored_customer_stores_what_a_chunk_of_new_ones_does(
    engine: Engine, tmp_path: Path
) -> None:
    path = book(tmp_path, 200)
    load(engine, path, now=NOW)
    fresh = snapshot(engine)
    _empty(engine)
    first_line = tmp_path / "first.jsonl"
    first_line.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n")
    load(engine, first_line, now=NOW)

    report = load(engine, path, now=NOW)  # one chunk: the upserts, staged on PostgreSQL

    assert (report.inserted, report.unchanged, report.refused) == (199, 1, [])
    assert fresh["invoices"]
    assert fresh["audit_log"]
    assert snapshot(engine) == fresh


def test_postgresql_stores_the_rows_sqlite_stores(
    pg_engine: Engine, sqlite_url: str, tmp_path: Path
) -> None:
    path = book(tmp_path, 200)
    lite = make_engine(sqlite_url)

    for eng in (pg_engine, lite):
        load(eng, path, now=NOW, chunk_size=64)

    expected = snapshot(lite)
    lite.dispose()
    assert expected["invoices"]
    assert any(c["billing_emails"] for c in expected["customers"])
    assert snapshot(pg_engine) == expected


def test_a_value_postgresql_cannot_store_refuses_its_line_on_both_paths(
    pg_engine: Engine, tmp_path: Path
) -> None:
    lines = list(book_lines(3, seed=3))
    bad = json.loads(lines[1])
    bad["name"] = "Bo\u0000b"  # valid JSON and valid text to the validation; not to PostgreSQL
    lines[1] = json.dumps(bad)
    path = tmp_path / "book.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    first = load(pg_engine, path, now=NOW)  # new customers: COPY into the tables
    again = load(pg_engine, path, now=LATER)  # stored ones: staged upserts

    assert (first.inserted, [(e.line, e.path) for e in first.refused]) == (2, [(2, "$")])
    assert "refused by the database" in first.refused[0].message
    assert (again.unchanged, [e.line for e in again.refused]) == (2, [2])
    with pg_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM customers")) == 2


def test_the_garbage_collector_runs_rarely_during_an_import_and_as_before_after(
    engine: Engine, tmp_path: Path
) -> None:
    before = gc.get_threshold()
    during: list[int] = []

    load(
        engine, book(tmp_path, 5), now=NOW, progress=lambda *_: during.append(gc.get_threshold()[0])
    )

    assert during
    assert min(during) >= GC_THRESHOLD
    assert gc.get_threshold() == before


def test_lines_naming_the_same_ids_in_different_chunks_land_in_file_order(
    engine: Engine, tmp_path: Path
) -> None:
    book_of_40 = [json.loads(line) for line in book_lines(40, seed=3)]
    lines = []
    for line in book_of_40:  # each customer four times in a row, changed each time: a chunk
        for rewrite in range(4):  # ends at each repeat, and the next one names the same ids
            line["name"] = f"Name {rewrite}"
            line["payment_methods"][0]["exp_month"] = rewrite + 1
            lines.append(json.dumps(line))
    path = tmp_path / "book.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    report = load(engine, path, now=NOW, chunk_size=3)

    assert (report.inserted, report.updated, report.refused) == (40, 120, [])
    first_cards = select(payment_methods.c.exp_month).where(
        payment_methods.c.id.endswith("_0", autoescape=True)
    )
    with engine.connect() as conn:
        assert set(conn.scalars(select(customers.c.name))) == {"Name 3"}
        assert set(conn.scalars(first_cards)) == {4}
