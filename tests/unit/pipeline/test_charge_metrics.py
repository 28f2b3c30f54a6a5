"""Charge answers move the Prometheus counters of outcomes by decline class and of the amounts
recovered, once per answer and only once the answer is committed."""

from __future__ import annotations

from datetime import datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, select

from dunning.gateways.base import Decline
from dunning.services.counters import count_charges
from dunning.services.failures import FailedCharge, record_failure
from dunning.store.tables import invoices, payment_attempts
from dunning.store.uow import transaction
from schedules.producers import due_retries
from tests.unit.pipeline.conftest import Pipeline


def outcomes(outcome: str, decline_class: str) -> float:
    labels = {"outcome": outcome, "decline_class": decline_class}
    return REGISTRY.get_sample_value("dunning_charge_outcomes_total", labels) or 0.0


def recovered(currency: str) -> float:
    labels = {"currency": currency}
    return REGISTRY.get_sample_value("dunning_recovered_amount_minor_total", labels) or 0.0


def snapshot(decline_class: str = "soft") -> dict[str, float]:
    return {
        "declined": outcomes("declined", decline_class),
        "succeeded": outcomes("succeeded", "none"),
        "unknown_duplicate": outcomes("unknown", "duplicate"),
        "EUR": recovered("EUR"),
        "USD": recovered("USD"),
    }


def fail(p: Pipeline, cid: str, amount: int, currency: str) -> None:
    now = p.clock.now()
    decline = Decline("insufficient_funds", "51")
    record_failure(
        p.c, FailedCharge(f"in_{cid}", f"sub_{cid}", amount, currency, decline, now), now
    )


def test_a_decline_a_success_and_an_unknown_answer_move_the_counters(pipeline: Pipeline) -> None:
    pipeline.add_customer("cus_1", token="sbx_insufficient_funds_1")
    pipeline.add_customer("cus_2", token="sbx_ok_2", currency="USD")
    pipeline.add_customer("cus_3", token="sbx_duplicate_transaction_3")
    fail(pipeline, "cus_1", 12500, "EUR")
    fail(pipeline, "cus_2", 990, "USD")
    fail(pipeline, "cus_3", 700, "EUR")
    pipeline.drain()
    # The sandbox declines insufficient_funds with Visa code 51, which the policy classes so.
    cls = "visa_cat2"
    before = snapshot(cls)
    due: datetime = max(pipeline.row(invoices, f"in_cus_{i}")["next_attempt_at"] for i in (1, 2, 3))
    pipeline.clock.set(due)
    assert due_retries(pipeline.c, pipeline.clock.now()) == 3
    pipeline.drain()

    after = snapshot(cls)
    assert pipeline.row(invoices, "in_cus_2")["status"] == "paid"
    with pipeline.c.engine.connect() as conn:
        stored = conn.execute(
            select(payment_attempts.c.decline_class).where(
                payment_attempts.c.invoice_id == "in_cus_1", payment_attempts.c.attempt_no == 2
            )
        ).scalar_one()
    assert stored == cls
    assert {k: after[k] - before[k] for k in before} == {
        "declined": 1,
        "succeeded": 1,
        "unknown_duplicate": 1,
        "EUR": 0,  # the EUR charges were declined or left unknown: nothing recovered
        "USD": 990,
    }


def test_the_same_answer_applied_twice_is_counted_once(pipeline: Pipeline) -> None:
    pipeline.add_customer("cus_1", token="sbx_ok_1")
    fail(pipeline, "cus_1", 12500, "EUR")
    pipeline.drain()
    before = snapshot()
    pipeline.clock.set(pipeline.row(invoices, "in_cus_1")["next_attempt_at"])
    actor = pipeline.broker.get_actor("charge_retry")
    for _ in range(2):
        pipeline.broker.enqueue(actor.message([["in_cus_1", 2]]))
    pipeline.drain()
    after = snapshot()
    assert (after["succeeded"] - before["succeeded"], after["EUR"] - before["EUR"]) == (1, 12500)


def test_answers_are_counted_only_when_their_transaction_commits() -> None:
    engine = create_engine("sqlite://")
    before = snapshot()

    def rolled_back() -> None:
        with transaction(engine) as conn:
            count_charges(conn, [("succeeded", None, 500, "USD"), ("declined", "soft", 500, "EUR")])
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        rolled_back()
    assert snapshot() == before
    with transaction(engine) as conn:
        count_charges(conn, [("succeeded", None, 500, "USD"), ("succeeded", None, 250, "USD")])
        assert snapshot() == before  # not before the commit
    after = snapshot()
    assert (after["succeeded"] - before["succeeded"], after["USD"] - before["USD"]) == (2, 750)
    engine.dispose()
