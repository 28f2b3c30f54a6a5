"""``dunning invoice …`` as an operator reads it: formatted values in 80 columns, and refusals
and results said in words."""

from __future__ import annotations

import re

import pytest

from dunning.cli.main import main
from dunning.services.operator import ACTIONS
from dunning.store.tables import invoices
from tests.unit.ops.conftest import Book


@pytest.fixture
def open_invoice(book: Book, monkeypatch: pytest.MonkeyPatch) -> str:
    book.add_customer("a", amount=12500, currency="EUR")
    invoice = book.fail("a")
    monkeypatch.setenv("DUNNING_DATABASE_URL", book.url)
    return invoice


def test_show_formats_money_times_and_flags_in_80_columns(
    open_invoice: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["invoice", "show", open_invoice]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert f"invoice {open_invoice}: open, €125.00" in out
    assert re.search(r"failed charges\s+1, the first 2026-03-02 10:00 UTC", out), out
    assert re.search(r"paused\s+no *\n", out)
    assert re.search(r"paid\s+no *\n", out)
    assert "Visa •••• 4242, expires 12/2030, active" in out
    assert "True" not in out
    assert "False" not in out
    assert "None" not in out
    assert "+00:00" not in out
    assert "12500" not in out


def test_show_says_yes_for_a_paused_invoice(
    book: Book, open_invoice: str, capsys: pytest.CaptureFixture[str]
) -> None:
    book.set(invoices, open_invoice, paused=True)
    assert main(["invoice", "show", open_invoice]) == 0
    assert re.search(r"paused\s+yes *\n", capsys.readouterr().out)


def test_show_of_an_unknown_invoice_names_it(
    open_invoice: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["invoice", "show", "in_nope"]) == 2
    assert capsys.readouterr().err.strip() == "error: invoice 'in_nope' does not exist"
    for action in ACTIONS:
        assert main(["invoice", action, "in_nope", "--reason", "x"]) == 2, action
        assert capsys.readouterr().err.strip() == "error: invoice 'in_nope' does not exist"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["invoice", "show", "in_nope"], "invoice 'in_nope' does not exist"),
        (["customer", "show", "nope"], "customer 'nope' does not exist"),
        (["customer", "resume", "nope", "-r", "x"], "customer 'nope' does not exist"),
        (["endpoints", "remove", "999"], "webhook endpoint 999 does not exist"),
        (["refunds", "done", "999", "--note", "x"], "overpayment 999 does not exist"),
    ],
)
def test_an_id_that_names_no_record_exits_2_in_every_command(
    open_invoice: str, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {says}")
    assert captured.out == ""


def test_mark_paid_on_a_paid_invoice_says_it_is_already_paid(
    open_invoice: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["invoice", "mark-paid", open_invoice, "--reason", "bank transfer"]) == 0
    assert "marked paid" in capsys.readouterr().out
    assert main(["invoice", "mark-paid", open_invoice, "--reason", "again"]) == 1
    err = capsys.readouterr().err
    assert re.search(
        rf"invoice '{open_invoice}' is already paid \(at 20\d\d-\d\d-\d\d \d\d:\d\d UTC\): "
        "nothing to do",
        err,
    ), err
    assert "InvoiceStatus" not in err
    assert "cannot go from" not in err
    assert main(["invoice", "write-off", open_invoice, "--reason", "give up"]) == 1
    assert f"invoice '{open_invoice}' is paid: it cannot be written off" in capsys.readouterr().err


def test_retry_says_it_was_queued_not_made(
    open_invoice: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["invoice", "retry", open_invoice, "--reason", "asked", "--by", "ana"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "retry queued, not made yet: `dunning run` charges it within 10 minutes" in out
    assert "done" not in out
