"""Comparing policies on a book: replays through the real pipeline, with the model's answers."""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from config.settings import DEFAULT_POLICY_FILE
from dunning.whatif.book import Book, read_file
from dunning.whatif.compare import Comparison, compare
from dunning.whatif.params import ModelParams, load_params, timing_blind
from dunning.whatif.replay import PolicySpec
from dunning.whatif.sample import draw_sample
from tests.unit.whatif import books

DEFAULT = PolicySpec("default", DEFAULT_POLICY_FILE)
# The same four retries, each a day later: a policy that differs from the default only in
# when its retries run.
LATER = PolicySpec("later", DEFAULT_POLICY_FILE, {"retry": {"days": [2, 4, 6, 8]}})
STRIPE_LIKE = PolicySpec(
    "stripe-like", DEFAULT_POLICY_FILE, {"retry": {"days": [1, 2, 4, 6, 8, 10, 12, 13]}}
)


@cache
def _book(n: int, insufficient_only: bool) -> Book:
    import tempfile

    decline = {"decline_code": "insufficient_funds", "network_code": "51"}
    with tempfile.TemporaryDirectory() as tmp:
        path = books.write(
            Path(tmp) / "book.jsonl", n, decline=decline if insufficient_only else None
        )
        return read_file(path)


def _run(book: Book, policies: list[PolicySpec], params: ModelParams, **kw: object) -> Comparison:
    return compare(book, policies, params=params, seed=11, days_after=20, cores=1, **kw)  # type: ignore[arg-type]


def _recovered(c: Comparison, slot: int) -> float:
    return c.figures[slot].recovered


def test_timing_changes_recovery_under_the_model_and_not_under_a_timing_blind_one() -> None:
    book = _book(80, True)
    params = load_params()
    timed = _run(book, [DEFAULT, LATER], params)
    blind = _run(book, [DEFAULT, LATER], timing_blind(params))
    assert _recovered(timed, 0) != _recovered(timed, 1)
    assert timed.differences[0].rate != 0
    # Timing-blind: the same four retries face the same draws, so the same invoices recover.
    assert _recovered(blind, 0) == _recovered(blind, 1) > 0
    assert blind.differences[0].rate == 0.0
    assert blind.figures[0].retries == blind.figures[1].retries


def test_more_tries_recover_more_and_use_more_of_the_network_limits() -> None:
    c = _run(_book(60, False), [DEFAULT, STRIPE_LIKE], load_params())
    default, stripe = c.figures
    assert stripe.recovered >= default.recovered
    assert stripe.retries > default.retries
    assert max(m for m, _ in stripe.peaks.values()) > max(m for m, _ in default.peaks.values())
    assert max(m for m, _ in stripe.peaks.values()) <= 21  # Visa: 20 reattempts
    # Hard and new-card declines never recover by retrying the same card.
    assert default.by_class["new_card"][1] == 0
    assert default.invoices == 60
    assert sum(n for n, _ in default.by_class.values()) == 60


def test_every_figure_adds_up() -> None:
    c = _run(_book(60, False), [DEFAULT], load_params())
    f = c.figures[0]
    assert f.recovered == len(f.days) == sum(r for _, r in f.by_class.values())
    assert sum(m.recovered_invoices for m in f.money.values()) == f.recovered
    assert all(0 <= m.recovered <= m.failed for m in f.money.values())
    assert all(d >= 0 for d, _ in f.days)
    assert f.emails.get("payment_recovered", 0) == f.recovered
    assert f.emails.get("payment_failed", 0) + f.emails.get("action_required", 0) >= 60
    curve = f.recovered_by_day(30)
    assert curve == sorted(curve)
    assert curve[-1] == pytest.approx(f.rate)


def test_a_sample_stands_for_the_book() -> None:
    book = _book(120, False)
    sample = draw_sample(book.cases, 40, seed=5)
    assert not sample.complete
    assert 40 <= len(sample.cases) < 120
    assert sum(sample.weights.values()) == pytest.approx(120)
    assert {c.stratum for c in sample.cases} == {c.stratum for c in book.cases}
    assert draw_sample(book.cases, 40, seed=5).cases == sample.cases
    assert draw_sample(book.cases, 40, seed=6).cases != sample.cases
    c = _run(book, [DEFAULT, STRIPE_LIKE], load_params(), sample_size=40)
    assert c.figures[0].invoices == pytest.approx(120)
    assert 0 < c.figures[0].margin < 0.5
    assert c.differences[0].rate_margin > 0


def test_worker_processes_give_the_same_answer_as_one_process() -> None:
    book = _book(16, False)
    one = compare(book, [DEFAULT, STRIPE_LIKE, LATER], params=load_params(), seed=2,
                  days_after=15, cores=1)  # fmt: skip
    many = compare(book, [DEFAULT, STRIPE_LIKE, LATER], params=load_params(), seed=2,
                   days_after=15, cores=2)  # fmt: skip
    assert [f.recovered for f in one.figures] == [f.recovered for f in many.figures]
    assert [f.retries for f in one.figures] == [f.retries for f in many.figures]
    assert [replace(f, name="") for f in one.figures] == [replace(f, name="") for f in many.figures]
