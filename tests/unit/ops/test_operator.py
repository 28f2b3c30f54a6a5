"""Operator actions on one invoice: each changes what it says, is audited with who and why, and
refuses what the lifecycle forbids."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from dunning.cli.main import main
from dunning.errors import InvalidTransition
from dunning.services import operator
from dunning.store.tables import audit_log, invoices, notifications, subscriptions
from schedules.producers import due_retries
from tests.unit.ops.conftest import Book


def operator_rows(book: Book, invoice_id: str) -> list[tuple[str, str, str | None, str | None]]:
    rows = book.rows(audit_log, audit_log.c.invoice_id == invoice_id)
    return [
        (r["kind"], r["actor"], r["reason"], r["message"])
        for r in rows
        if r["kind"].startswith("operator_")
    ]


@pytest.fixture
def stopped(book: Book) -> str:
    """An invoice whose retries stopped because the card needs replacing."""
    book.add_customer("a")
    invoice = book.fail("a")
    book.set(invoices, invoice, next_attempt_at=None, stop_reason="needs_new_card")
    return invoice


def test_retry_makes_the_invoice_due_now_and_queues_it_once(book: Book, stopped: str) -> None:
    operator.apply(
        book.c, "retry", stopped, book.now, reason="customer called: funds are back", by="maria"
    )
    inv = book.invoice_row(stopped)
    assert inv["next_attempt_at"] == book.now
    assert inv["next_attempt_reason"] == "operator_retry"
    assert inv["stop_reason"] is None
    why = "customer called: funds are back"
    assert operator_rows(book, stopped) == [("operator_retry", "maria", why, why)]
    assert due_retries(book.c, book.now) == 0  # queued at once, and claimed
    assert book.dispatcher.sent["retry_charges"] == [(stopped, 2)]


def test_retry_with_nothing_to_send_it_is_left_to_the_producer(book: Book, stopped: str) -> None:
    book.dispatcher.sends = False  # the embedded default's null dispatcher sends nothing
    operator.apply(book.c, "retry", stopped, book.now, reason="customer asked", by="maria")
    assert book.invoice_row(stopped)["retry_claimed_until"] is None
    assert due_retries(book.c, book.now) == 1  # found at once, not after a lease of minutes


def test_pause_holds_retries_and_steps_until_resume(book: Book, stopped: str) -> None:
    operator.apply(book.c, "retry", stopped, book.now, reason="try again", by="maria")
    step_at = book.invoice_row(stopped)["next_step_at"]
    assert step_at is not None
    operator.apply(book.c, "pause", stopped, book.now, reason="disputed", by="li")
    inv = book.invoice_row(stopped)
    assert inv["paused"] is True
    assert inv["next_step_at"] is None
    assert due_retries(book.c, book.now) == 0

    book.advance(timedelta(hours=1))
    operator.apply(book.c, "resume", stopped, book.now, reason="dispute settled", by="li")
    inv = book.invoice_row(stopped)
    assert inv["paused"] is False
    assert inv["next_step_at"] == step_at
    assert due_retries(book.c, book.now) == 1
    kinds = [k for k, *_ in operator_rows(book, stopped)]
    assert kinds == ["operator_retry", "operator_pause", "operator_resume"]


def test_mark_paid_settles_reactivates_and_is_audited(book: Book, stopped: str) -> None:
    operator.apply(book.c, "mark-paid", stopped, book.now, reason="paid by bank transfer", by="o")
    inv = book.invoice_row(stopped)
    assert inv["status"] == "paid"
    assert inv["paid_at"] == book.now
    assert book.row(subscriptions, "sub_a")["status"] == "active"
    settled = [
        r for r in book.rows(audit_log, audit_log.c.invoice_id == stopped)
        if r["kind"] == "invoice_status" and r["data"].get("to") == "paid"
    ]  # fmt: skip
    assert [r["reason"] for r in settled] == ["operator"]
    assert operator_rows(book, stopped)[0][:3] == (
        "operator_mark_paid",
        "o",
        "paid by bank transfer",
    )


def test_write_off_stops_everything_and_cannot_be_repeated(book: Book, stopped: str) -> None:
    operator.apply(book.c, "write-off", stopped, book.now, reason="bankrupt", by="cfo")
    inv = book.invoice_row(stopped)
    assert inv["status"] == "uncollectible"
    assert (inv["next_attempt_at"], inv["next_step_at"]) == (None, None)
    assert inv["stop_reason"] == "written_off"
    pending = notifications.c.status == "pending"
    assert book.count(notifications, notifications.c.invoice_id == stopped, pending) == 0
    with pytest.raises(InvalidTransition, match="cannot go from uncollectible to uncollectible"):
        operator.apply(book.c, "write-off", stopped, book.now, reason="again", by="cfo")
    assert [k for k, *_ in operator_rows(book, stopped)] == ["operator_write_off"]


@pytest.mark.parametrize("action", ["retry", "pause", "resume"])
def test_actions_on_a_paid_invoice_are_refused(book: Book, stopped: str, action: str) -> None:
    operator.apply(book.c, "mark-paid", stopped, book.now, reason="paid", by="o")
    with pytest.raises(InvalidTransition, match="only an open invoice"):
        operator.apply(book.c, action, stopped, book.now, reason="why", by="o")


def test_a_long_reason_is_kept_whole_in_the_message(book: Book, stopped: str) -> None:
    reason = "customer wrote in: " + "x" * 200
    operator.apply(book.c, "pause", stopped, book.now, reason=reason, by="o")
    (_, _, short, message), = operator_rows(book, stopped)  # fmt: skip
    assert short == reason[:64]
    assert message == reason


def test_cli_action_exits_1_on_an_invalid_transition(
    book: Book,
    stopped: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DUNNING_DATABASE_URL", book.url)
    assert main(["invoice", "write-off", stopped, "--reason", "gone", "--by", "ana"]) == 0
    assert main(["invoice", "retry", stopped, "--reason", "try"]) == 1
    assert "only an open invoice can be retried" in capsys.readouterr().err
    assert main(["invoice", "pause", "in_nope", "--reason", "x"]) == 2  # no such invoice
    assert main(["invoice", "pause", stopped]) == 2  # --reason is required


def test_invoice_show_json_has_the_whole_timeline(
    book: Book,
    stopped: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DUNNING_DATABASE_URL", book.url)
    assert main(["invoice", "pause", stopped, "--reason", "on hold", "--by", "ana"]) == 0
    capsys.readouterr()
    assert main(["invoice", "show", stopped, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["invoice"]["status"] == "open"
    assert shown["invoice"]["paused"] is True
    assert shown["card"] == {
        "id": "pm_a",
        "brand": "visa",
        "last4": "4242",
        "exp": "12/2030",
        "status": "active",
        "blocked_reason": None,
    }
    kinds = [e["kind"] for e in shown["timeline"]]
    assert kinds[0] == "invoice_status"
    assert kinds[-1] == "operator_pause"
    assert "charge_attempt" in kinds
    assert shown["timeline"][-1]["actor"] == "ana"
    assert [a["status"] for a in shown["attempts"]] == ["declined"]
    assert "sbx_ok_a" not in json.dumps(shown)  # the card token never leaves the store


def test_invoice_show_table(
    book: Book,
    stopped: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DUNNING_DATABASE_URL", book.url)
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["invoice", "show", stopped]) == 0
    out = capsys.readouterr().out
    assert "Visa •••• 4242" in out
    assert "charge attempt" in out
    assert "insufficient_funds" in out
