"""The charge-retry actor on the stub broker: idempotent, never charges blind."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from dunning.gateways.base import Decline
from dunning.services.failures import FailedCharge, record_failure
from dunning.store.tables import audit_log, invoices, notifications, payment_attempts
from schedules.producers import due_retries, unknown_outcomes
from tests.unit.pipeline.conftest import Pipeline

SOFT = Decline("insufficient_funds", "51")


def fail(p: Pipeline, invoice: str = "in_1", cid: str = "cus_1", decline: Decline = SOFT) -> None:
    record_failure(
        p.c,
        FailedCharge(invoice, f"sub_{cid}", 12500, "EUR", decline, p.clock.now()),
        p.clock.now(),
    )
    p.drain()


def due_at(p: Pipeline, invoice: str = "in_1") -> object:
    return p.row(invoices, invoice)["next_attempt_at"]


def test_first_failure_opens_dunning_and_schedules_a_retry(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    fail(pipeline)
    inv = pipeline.row(invoices, "in_1")
    assert inv["status"] == "open"
    assert inv["attempt_count"] == 1
    assert inv["next_attempt_at"] > pipeline.clock.now()
    assert pipeline.row(invoices, "in_1")["first_failed_at"] == pipeline.clock.now()
    kinds = [m["Subject"] for m in pipeline.mail.sent]
    assert len(kinds) == 1
    assert "did not go through" in kinds[0]


def test_due_retry_charges_once_and_recovers(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    fail(pipeline)
    pipeline.clock.set(due_at(pipeline))  # type: ignore[arg-type]
    assert due_retries(pipeline.c, pipeline.clock.now()) == 1
    pipeline.drain()
    assert len(pipeline.gateway.ledger.entries()) == 1
    assert pipeline.row(invoices, "in_1")["status"] == "paid"
    assert any("Payment received" in m["Subject"] for m in pipeline.mail.sent)


def test_same_retry_message_twice_gives_one_charge_and_one_email(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    fail(pipeline)
    pipeline.clock.set(due_at(pipeline))  # type: ignore[arg-type]
    actor = pipeline.broker.get_actor("charge_retry")
    for _ in range(2):
        pipeline.broker.enqueue(actor.message([["in_1", 2]]))
    pipeline.drain()
    assert len(pipeline.gateway.ledger.entries()) == 1
    assert pipeline.count(payment_attempts, payment_attempts.c.invoice_id == "in_1") == 2
    receipts = [m for m in pipeline.mail.sent if "Payment received" in m["Subject"]]
    assert len(receipts) == 1


def test_producer_claims_prevent_double_enqueue_within_lease(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    fail(pipeline)
    now = pipeline.clock.now() + timedelta(days=2)
    assert due_retries(pipeline.c, now) == 1
    assert due_retries(pipeline.c, now) == 0  # claimed within its lease


def test_a_retry_not_yet_due_does_nothing(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    fail(pipeline)
    actor = pipeline.broker.get_actor("charge_retry")
    pipeline.broker.enqueue(actor.message([["in_1", 2]]))
    pipeline.drain()
    assert pipeline.gateway.ledger.entries() == []


def test_timeout_after_charge_is_resolved_without_charging_again(pipeline: Pipeline) -> None:
    pipeline.add_customer(token="sbx_ok_z")
    pipeline.gateway.script("sbx_ok_z", [{"error": "timeout", "charged": True}])
    fail(pipeline)
    pipeline.clock.set(due_at(pipeline))  # type: ignore[arg-type]
    due_retries(pipeline.c, pipeline.clock.now())
    pipeline.drain()
    with pipeline.c.engine.connect() as conn:
        status = conn.execute(
            select(payment_attempts.c.status).where(payment_attempts.c.attempt_no == 2)
        ).scalar_one()
    assert status == "unknown"
    assert pipeline.row(invoices, "in_1")["next_attempt_at"] is None  # nothing charged blind
    pipeline.advance(timedelta(minutes=5))
    assert unknown_outcomes(pipeline.c, pipeline.clock.now()) == 1
    pipeline.drain()
    assert pipeline.row(invoices, "in_1")["status"] == "paid"
    assert len(pipeline.gateway.ledger.entries()) == 1


def test_timeout_without_charge_becomes_not_charged_and_is_retried_at_once(
    pipeline: Pipeline,
) -> None:
    pipeline.add_customer(token="sbx_ok_y")
    pipeline.gateway.script("sbx_ok_y", [{"error": "timeout"}, "succeeded"])
    fail(pipeline)
    pipeline.clock.set(due_at(pipeline))  # type: ignore[arg-type]
    due_retries(pipeline.c, pipeline.clock.now())
    pipeline.drain()
    pipeline.advance(timedelta(minutes=5))
    unknown_outcomes(pipeline.c, pipeline.clock.now())
    pipeline.drain()  # found not charged: the retry is enqueued at once, not at the next scan
    assert due_retries(pipeline.c, pipeline.clock.now()) == 0
    inv = pipeline.row(invoices, "in_1")
    assert inv["status"] == "paid"
    assert inv["attempt_count"] == 3
    with pipeline.c.engine.connect() as conn:
        kinds = list(
            conn.execute(
                select(audit_log.c.kind).where(audit_log.c.kind == "charge_resolved")
            ).scalars()
        )
    assert kinds == ["charge_resolved"]


def test_hard_decline_stops_retries_and_asks_for_action(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    fail(pipeline, decline=Decline("stolen_card", "43"))
    inv = pipeline.row(invoices, "in_1")
    assert inv["next_attempt_at"] is None
    assert inv["stop_reason"]
    with pipeline.c.engine.connect() as conn:
        kinds = list(conn.execute(select(notifications.c.kind)).scalars())
    assert kinds == ["action_required"]
    assert len(pipeline.mail.sent) == 1
    assert due_retries(pipeline.c, pipeline.clock.now() + timedelta(days=3)) == 0
