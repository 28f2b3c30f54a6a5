"""``dunning status``: the funnel and the backlogs against a seeded book, on both databases."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import and_

from dunning.cli.main import main
from dunning.ops.funnel import funnel
from dunning.policy.schedule import STEP_FINAL_NOTICE, dunning_steps
from dunning.store.tables import invoices, notifications, subscriptions
from schedules.leader import take_lease
from tests.unit.ops.conftest import START, Book


def seed(book: Book) -> None:
    """One invoice per stage (see the expectations in the tests)."""
    steps = dunning_steps(START, "UTC", book.c.policy.for_plan("default", "month"))
    final_index = next(s.index for s in steps if s.kind == STEP_FINAL_NOTICE)
    now = book.now
    for cid, amount, currency in [
        ("a", 1000, "EUR"),
        ("b", 2000, "USD"),
        ("c", 500, "EUR"),
        ("g", 300, "EUR"),
        ("d", 700, "EUR"),
        ("e", 900, "EUR"),
        ("f", 100, "EUR"),
    ]:
        book.add_customer(cid, amount=amount, currency=currency)
        book.fail(cid)
    # a: retrying, its retry an hour overdue
    book.set(invoices, "in_a", next_attempt_at=now - timedelta(hours=1))
    # b: waiting for a new card; a step two hours overdue
    book.set(
        invoices,
        "in_b",
        next_attempt_at=None,
        stop_reason="needs_new_card",
        next_step_at=now - timedelta(hours=2),
    )
    # c: paused, past the final notice, subscription suspended
    book.set(invoices, "in_c", paused=True, steps_done=final_index + 1)
    book.set(subscriptions, "sub_c", status="suspended")
    # g: retries stopped for another reason
    book.set(invoices, "in_g", next_attempt_at=None, stop_reason="schedule_exhausted")
    # d: recovered five days ago; e: recovered 40 days ago; f: paid, never failed
    paid = {"status": "paid", "next_attempt_at": None, "next_step_at": None}
    book.set(invoices, "in_d", paid_at=now - timedelta(days=5), **paid)
    book.set(invoices, "in_e", paid_at=now - timedelta(days=40), **paid)
    book.set(invoices, "in_f", paid_at=now - timedelta(days=1), first_failed_at=None, **paid)


def test_every_stage_counts_the_invoices_it_should(any_book: Book) -> None:
    seed(any_book)
    with any_book.c.engine.connect() as conn:
        f = funnel(conn, any_book.c.policy, any_book.now)
    got = {name: (s.count, s.amounts) for name, s in f.stages.items()}
    assert got == {
        "past_due": (4, {"EUR": 1800, "USD": 2000}),
        "retrying": (1, {"EUR": 1000}),
        "waiting_for_card": (1, {"USD": 2000}),
        "retries_stopped": (1, {"EUR": 300}),
        "paused": (1, {"EUR": 500}),
        "final_notice_sent": (1, {"EUR": 500}),
        "suspended": (1, {"EUR": 500}),
        "recovered_30d": (1, {"EUR": 700}),
    }
    assert f.suspended_subscriptions == 1


def test_backlogs_count_due_work_and_the_lag_of_the_oldest(any_book: Book) -> None:
    seed(any_book)
    now = any_book.now
    with any_book.c.engine.connect() as conn:
        f = funnel(conn, any_book.c.policy, now)
    retries, steps = f.backlogs["retries"], f.backlogs["steps"]
    # c's retry is due too, but c is paused: the producer skips it, so it is not backlog
    assert (retries.due, retries.lag_s) == (1, 3600.0)
    assert (steps.due, steps.lag_s) == (1, 7200.0)
    due_mail = any_book.count(
        notifications, and_(notifications.c.status == "pending", notifications.c.not_before <= now)
    )
    assert due_mail > 0
    assert f.backlogs["emails"].due == due_mail
    assert f.outbox_pending == any_book.count(notifications, notifications.c.status == "pending")
    assert f.backlogs["outbound"].due == 0
    assert f.backlogs["events"].due == 0


def test_status_json_prints_the_funnel(
    book: Book, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(book)
    monkeypatch.setenv("DUNNING_DATABASE_URL", book.url)
    assert main(["status", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["stages"]["past_due"] == {"count": 4, "amounts": {"EUR": 1800, "USD": 2000}}
    assert shown["suspended_subscriptions"] == 1
    assert set(shown["backlogs"]) == {"retries", "steps", "emails", "events", "outbound"}


def test_status_table_names_the_stages(
    book: Book, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(book)
    monkeypatch.setenv("DUNNING_DATABASE_URL", book.url)
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    for label in ("past due", "waiting for card", "recovered 30d", "€18.00", "$20.00"):
        assert label in out


def test_status_names_the_scheduler_leader_and_a_lease_that_ran_out(
    any_book: Book, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNNING_DATABASE_URL", any_book.url)
    with any_book.c.engine.connect() as conn:
        assert funnel(conn, any_book.c.policy, any_book.now).scheduler is None
    with any_book.c.engine.begin() as conn:
        assert take_lease(conn, "scheduler", "host-a:41:1f2e", timedelta(seconds=30))
    with any_book.c.engine.connect() as conn:
        leader = funnel(conn, any_book.c.policy, any_book.now).scheduler
    assert leader is not None
    assert (leader.holder, leader.active) == ("host-a:41:1f2e", True)
    assert main(["status", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scheduler"]["holder"] == "host-a:41:1f2e"
    assert out["scheduler"]["active"] is True

    with any_book.c.engine.begin() as conn:  # the holder renews with a lease already over
        assert take_lease(conn, "scheduler", "host-a:41:1f2e", timedelta(seconds=-1))
    assert main(["status"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "scheduler leader: none: the lease of host-a:41:1f2e ran out at" in shown
