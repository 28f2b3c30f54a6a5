"""``dunning customer show|pause|resume`` on SQLite and PostgreSQL: the hold is written and
audited with the operator's name, and the state reads as ``dunning invoice show`` reads."""

from __future__ import annotations

import getpass
import json
import re

import pytest

from dunning.cli.main import main
from dunning.store.tables import audit_log, customers
from tests.unit.ops.conftest import Book


@pytest.fixture
def owing(any_book: Book, monkeypatch: pytest.MonkeyPatch) -> Book:
    """Customer ``a`` owes two failed invoices of €125.00."""
    any_book.add_customer("a", amount=12500, currency="EUR")
    any_book.fail("a", "in_a1")
    any_book.fail("a", "in_a2")
    monkeypatch.setenv("DUNNING_DATABASE_URL", any_book.url)
    return any_book


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_show_lists_the_owed_invoices_in_80_columns(
    owing: Book, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["customer", "show", "a"]) == 0
    out = _out(capsys)
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert "customer a: dunning not paused" in out
    assert re.search(r"paused\s+no *\n", out), out
    assert re.search(r"owes\s+€250\.00", out), out
    for invoice in ("in_a1", "in_a2"):
        assert re.search(rf"{invoice}\s+│\s+open\s+│\s+€125\.00\s+│\s+1\s+│\s+2026-", out), out
    for raw in ("12500", "True", "False", "None", "+00:00"):
        assert raw not in out


def test_pause_and_resume_are_audited_with_the_operator(
    owing: Book, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["customer", "pause", "a", "--reason", "disputes the plan", "--by", "ana"]) == 0
    assert "customer a: paused: none of its invoices is charged" in " ".join(_out(capsys).split())
    assert owing.row(customers, "a")["dunning_paused"] is True
    audits = owing.rows(audit_log, audit_log.c.kind == "operator_pause_customer")
    assert {(r["invoice_id"], r["actor"], r["message"]) for r in audits} == {
        ("in_a1", "ana", "disputes the plan"),
        ("in_a2", "ana", "disputes the plan"),
    }
    assert main(["customer", "show", "a"]) == 0
    out = " ".join(_out(capsys).split())
    assert "customer a: dunning paused" in out
    assert re.search(
        r"paused yes \(paused 20\d\d-\d\d-\d\d \d\d:\d\d UTC by ana: disputes the plan\)", out
    )
    assert main(["customer", "show", "a", "--json"]) == 0
    state = json.loads(_out(capsys))
    assert state["paused"] is True
    assert state["last_hold"]["by"] == "ana"
    assert [i["invoice_id"] for i in state["invoices"]] == ["in_a1", "in_a2"]
    assert state["invoices"][0]["next_retry_at"] is None  # no retry while paused

    assert main(["customer", "pause", "a", "--reason", "again"]) == 1
    assert capsys.readouterr().err.strip() == "error: customer a is already paused"
    assert main(["customer", "resume", "a", "--reason", "sorted out"]) == 0
    assert owing.row(customers, "a")["dunning_paused"] is False
    resumed = owing.rows(audit_log, audit_log.c.kind == "operator_resume_customer")
    assert {r["actor"] for r in resumed} == {getpass.getuser()}  # the login name by default


def test_unknown_customer_and_missing_reason_are_usage_errors(
    owing: Book, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (["show", "nope"], ["show", "nope", "--json"], ["pause", "nope", "-r", "x"]):
        assert main(["customer", *args]) == 2, args
        captured = capsys.readouterr()
        assert captured.err.strip() == "error: customer 'nope' does not exist"
        assert captured.out == ""
    assert main(["customer", "resume", "a", "--reason", " "]) == 2
    assert capsys.readouterr().err.strip() == "error: --reason must say why"
    assert owing.count(audit_log, audit_log.c.kind.like("operator_%")) == 0
