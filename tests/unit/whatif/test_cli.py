"""``dunning whatif``: the command, its JSON and its report, its books, its refusals."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest

from dunning.cli.main import main
from dunning.simulate.runner import Wiring, advance, simulation
from dunning.simulate.scenario import Scenario
from dunning.store.engine import make_engine
from dunning.whatif.database import read_database
from tests.unit.whatif import books


@pytest.fixture
def book(tmp_path: Path) -> Path:
    return books.write(tmp_path / "book.jsonl", 12)


@pytest.fixture
def stripe_like(tmp_path: Path) -> Path:
    path = tmp_path / "stripe-like.toml"
    path.write_text("[retry]\ndays = [1, 2, 4, 6, 8, 10, 12, 13]\n", encoding="utf-8")
    return path


def test_json_compares_the_policies_and_says_its_seed(
    book: Path, stripe_like: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "whatif.html"
    args = ["whatif", "--book", str(book), "--policy", "default", "--policy", str(stripe_like),
            "--sample", "all", "--seed", "5", "--json", "--workers", "1", "--days", "15",
            "--report", str(report)]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seed"] == 5
    assert out["invoices"] == out["replayed"] == 12
    assert [p["name"] for p in out["policies"]] == ["default", "stripe-like"]
    assert out["policies"][1]["overrides"] == {"retry": {"days": [1, 2, 4, 6, 8, 10, 12, 13]}}
    first = out["policies"][0]
    assert first["invoices"] == 12
    assert 0 <= first["recovery_rate"] <= 1
    assert set(first["money"]) == {"DKK", "USD", "GBP"}
    assert out["against_first"][0]["policy"] == "stripe-like"
    root = ET.fromstring(report.read_text(encoding="utf-8").split("\n", 1)[1])
    assert {svg.get("id") for svg in root.iter("svg")} == {"recovery-curves", "class-bars"}
    assert not list(root.iter("script"))


def test_the_table_names_each_policy_and_the_seed(
    book: Path, stripe_like: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["whatif", "--book", str(book), "--policy", "default", "--policy", str(stripe_like),
            "--sample", "all", "--workers", "1", "--days", "15"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    for text in ("Recovered by retries", "What it took", "Against default", "stripe-like",
                 "seed 1", "insufficient funds", "final notice before suspension"):  # fmt: skip
        assert text in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "nope.toml"], "--policy nope.toml: cannot read it"),
        (["--policy", "BAD"], "retry.days[0]: must be a positive integer"),
        (["--sample", "many", "--policy", "default"], "--sample: a number of invoices or 'all'"),
        ([], "give at least one --policy"),
    ],
)
def test_bad_arguments_stop_with_exit_2_naming_them(
    book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[retry]\ndays = [0]\n", encoding="utf-8")
    args = [str(bad) if a == "BAD" else a for a in args]
    assert main(["whatif", "--book", str(book), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_book_line_the_importer_refuses_stops_the_what_if(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = books.write(tmp_path / "book.jsonl", 3)
    path.write_text(path.read_text() + '{"id": "x", "email": "not an address"}\n')
    assert main(["whatif", "--book", str(path), "--policy", "default"]) == 2
    assert "line 4: email: not an email address" in capsys.readouterr().err


def test_the_database_book_is_its_open_and_recent_invoices(tmp_path: Path) -> None:
    """A pipeline database with real history: each invoice comes back with its first failure."""
    src = books.write(tmp_path / "book.jsonl", 6)
    from dunning.whatif.book import read_file, scenario, span

    replayed = read_file(src)
    start, days = span(replayed.cases, 3)
    sc: Scenario = scenario(replayed, replayed.cases, start=start, days=days)
    with simulation(sc, Wiring(workdir=tmp_path)) as sim:
        advance(sim, sc)
    engine = make_engine(f"sqlite:///{tmp_path / 'simulation.sqlite3'}")
    now = start + timedelta(days=days)
    book = read_database(engine, now=now, since=timedelta(days=60))
    assert {c.invoice_id for c in book.cases} == {c.invoice_id for c in replayed.cases}
    by_id = {c.invoice_id: c for c in replayed.cases}
    for case in book.cases:
        want = by_id[case.invoice_id]
        assert (case.failed_at, case.decline, case.card_id, case.amount) == (
            want.failed_at, want.decline, want.card_id, want.amount)  # fmt: skip
        assert case.decline_class == want.decline_class
    assert read_database(engine, now=now + timedelta(days=365), since=timedelta(days=1)).cases == [
        c for c in book.cases if c.invoice_id in _open(engine)
    ]
    engine.dispose()


def _open(engine: object) -> set[str]:
    from sqlalchemy import select

    from dunning.store.tables import invoices

    with engine.connect() as conn:  # type: ignore[attr-defined]
        return set(conn.execute(select(invoices.c.id).where(invoices.c.status == "open")).scalars())


def test_an_empty_book_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text('{"id": "c1", "email": "a@example.com"}\n', encoding="utf-8")
    assert main(["whatif", "--book", str(path), "--policy", "default"]) == 1
    assert "no open or recently failed invoice" in capsys.readouterr().err
