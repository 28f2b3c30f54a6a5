"""Card replacement, the window's steps, cancellation, expiry reminders and token purge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dunning.gateways.base import Decline
from dunning.services import lifecycle, steps
from dunning.services.cards import CardDeclined, replace_card
from dunning.services.failures import FailedCharge, record_failure
from dunning.store.tables import (
    audit_log,
    customers,
    invoices,
    notifications,
    payment_attempts,
    payment_methods,
    subscriptions,
)
from schedules.producers import due_retries, due_steps, expiring_cards, token_purge
from tests.unit.pipeline.conftest import Pipeline

EXPIRED = Decline("expired_card", "54")


def _fail(p: Pipeline, decline: Decline = EXPIRED) -> None:
    record_failure(
        p.c, FailedCharge("in_1", "sub_cus_1", 12500, "EUR", decline, p.clock.now()), p.clock.now()
    )
    p.drain()


def _kinds(p: Pipeline) -> list[str]:
    with p.c.engine.connect() as conn:
        return list(
            conn.execute(select(notifications.c.kind).order_by(notifications.c.id)).scalars()
        )


def test_new_card_is_verified_made_default_and_charged_at_once(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    _fail(pipeline)
    card = pipeline.gateway.tokenize("4242424242424242", 1, 2031)
    result = replace_card(pipeline.c, "cus_1", card, remove_old=True, now=pipeline.clock.now())
    pipeline.drain()
    assert result.charged == {"in_1": "succeeded"}
    assert pipeline.row(invoices, "in_1")["status"] == "paid"
    assert pipeline.row(subscriptions, "sub_cus_1")["payment_method_id"] == result.payment_method_id
    assert pipeline.row(payment_methods, "pm_cus_1")["status"] == "removed"
    assert pipeline.row(customers, "cus_1")["card_generation"] == 1
    with pipeline.c.engine.connect() as conn:
        initiator = conn.execute(
            select(payment_attempts.c.initiator).where(payment_attempts.c.attempt_no == 2)
        ).scalar_one()
    assert initiator == "customer"
    assert _kinds(pipeline) == ["action_required", "card_updated", "payment_recovered"]


def test_declined_card_changes_nothing(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    card = pipeline.gateway.tokenize("4000000000000002", 1, 2031)
    with pytest.raises(CardDeclined):
        replace_card(pipeline.c, "cus_1", card, remove_old=True, now=pipeline.clock.now())
    assert pipeline.count(payment_methods) == 1
    assert pipeline.row(customers, "cus_1")["card_generation"] == 0


def test_card_added_without_open_invoice_is_not_charged(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    card = pipeline.gateway.tokenize("5555555555554444", 1, 2031)
    result = replace_card(pipeline.c, "cus_1", card, remove_old=False, now=pipeline.clock.now())
    assert result.charged == {}
    assert pipeline.gateway.ledger.entries() == []
    assert pipeline.row(payment_methods, "pm_cus_1")["is_default"] is False


def test_window_reminder_final_notice_then_suspension(pipeline: Pipeline) -> None:
    pipeline.add_customer(token="sbx_insufficient_funds_1")
    _fail(pipeline, Decline("insufficient_funds", "51"))
    for _ in range(16 * 24):
        now = pipeline.advance(timedelta(hours=1))
        due_retries(pipeline.c, now)  # the reminder follows a declined retry
        pipeline.drain()
        due_steps(pipeline.c, now)
        pipeline.drain()
    kinds = _kinds(pipeline)
    assert kinds == [
        "payment_failed",
        "payment_retry_failed",
        "final_notice",
        "subscription_suspended",
    ]
    assert pipeline.row(subscriptions, "sub_cus_1")["status"] == "suspended"
    assert pipeline.row(invoices, "in_1")["stop_reason"] == "schedule_exhausted"
    # Paying later reactivates it.
    lifecycle.invoice_paid_elsewhere(pipeline.c, "in_1", pipeline.clock.now())
    assert pipeline.row(subscriptions, "sub_cus_1")["status"] == "active"


def test_steps_are_idempotent(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    _fail(pipeline, Decline("insufficient_funds", "51"))
    later = pipeline.advance(timedelta(days=5))
    assert steps.run_due_steps(pipeline.c, "in_1", later) == ["payment_retry_failed"]
    assert steps.run_due_steps(pipeline.c, "in_1", later) == []


def test_cancellation_stops_retries_and_pending_emails(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    _fail(pipeline, Decline("insufficient_funds", "51"))
    lifecycle.cancel_subscription(pipeline.c, "sub_cus_1", pipeline.clock.now())
    inv = pipeline.row(invoices, "in_1")
    assert inv["status"] == "void"
    assert inv["next_attempt_at"] is None
    assert inv["next_step_at"] is None
    assert lifecycle.cancel_subscription(pipeline.c, "sub_cus_1", pipeline.clock.now()) is False


def test_expiry_reminders_once_per_offset(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    with pipeline.c.engine.begin() as conn:
        conn.execute(payment_methods.update().values(exp_month=4, exp_year=2026))
        conn.execute(
            subscriptions.update().values(
                current_period_end=pipeline.clock.now() + timedelta(days=60)
            )
        )
    sent = []
    for _ in range(60):
        now = pipeline.advance(timedelta(days=1))
        sent.append(expiring_cards(pipeline.c, now))
        expiring_cards(pipeline.c, now)  # twice a day changes nothing
        pipeline.drain()
    assert sum(sent) == 2
    with pipeline.c.engine.connect() as conn:
        keys = sorted(conn.execute(select(notifications.c.dedup_key)).scalars())
    assert keys == ["card_expiring:pm_cus_1:2026-04:30d", "card_expiring:pm_cus_1:2026-04:7d"]


def test_token_purged_two_years_after_last_payment(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    assert token_purge(pipeline.c, pipeline.clock.now() + timedelta(days=699)) == 0
    later = pipeline.advance(timedelta(days=701))
    assert token_purge(pipeline.c, later) == 1
    pipeline.drain()
    card = pipeline.row(payment_methods, "pm_cus_1")
    assert card["token"] is None
    assert card["status"] == "purged"
    assert card["last4"] == "4242"
    assert "sbx_ok_1" in pipeline.gateway.deleted_tokens
    with pipeline.c.engine.connect() as conn:
        assert (
            conn.execute(
                select(audit_log.c.reason).where(audit_log.c.kind == "token_purged")
            ).scalar_one()
            == "retention"
        )


def test_recent_payment_keeps_the_token(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    later = pipeline.clock.now() + timedelta(days=701)
    with pipeline.c.engine.begin() as conn:
        conn.execute(customers.update().values(last_payment_at=later - timedelta(days=3)))
    assert token_purge(pipeline.c, later) == 0


def test_cancellation_drops_a_held_expiry_reminder(pipeline: Pipeline) -> None:
    pipeline.add_customer(timezone="America/Los_Angeles")
    with pipeline.c.engine.begin() as conn:
        conn.execute(payment_methods.update().values(exp_month=4, exp_year=2026))
        conn.execute(
            subscriptions.update().values(
                current_period_end=pipeline.clock.now() + timedelta(days=60)
            )
        )
    for _ in range(90):
        now = pipeline.advance(timedelta(hours=12))
        if expiring_cards(pipeline.c, now):
            break
    with pipeline.c.engine.connect() as conn:
        held = (
            conn.execute(
                select(notifications.c.status).where(notifications.c.kind == "card_expiring")
            )
            .scalars()
            .all()
        )
    assert "pending" in held
    lifecycle.cancel_subscription(pipeline.c, "sub_cus_1", pipeline.clock.now())
    with pipeline.c.engine.connect() as conn:
        statuses = set(
            conn.execute(
                select(notifications.c.status).where(notifications.c.kind == "card_expiring")
            ).scalars()
        )
    assert "pending" not in statuses
