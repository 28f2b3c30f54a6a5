"""Sending from the outbox: claimed before, marked after; transient failures wait, permanent
ones are recorded; the Message-ID comes from the dedup key."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from dunning.errors import MailPermanent, MailTransient
from dunning.gateways.base import Decline
from dunning.mail.message import message_id_for
from dunning.services.failures import FailedCharge, record_failure
from dunning.services.outbox import send_notifications
from dunning.store.tables import notifications
from schedules.producers import due_emails
from tests.unit.pipeline.conftest import Pipeline


def _queue_one(p: Pipeline, **customer: object) -> int:
    p.add_customer(**customer)  # type: ignore[arg-type]
    p.mail.fail_next(1, MailTransient("421 try later"))
    record_failure(
        p.c,
        FailedCharge(
            "in_1", "sub_cus_1", 500, "EUR", Decline("insufficient_funds", "51"), p.clock.now()
        ),
        p.clock.now(),
    )
    p.drain()
    with p.c.engine.connect() as conn:
        return int(conn.execute(select(notifications.c.id)).scalar_one())


def test_transient_failure_waits_for_backoff_then_sends_once(pipeline: Pipeline) -> None:
    nid = _queue_one(pipeline)
    with pipeline.c.engine.connect() as conn:
        row = conn.execute(select(notifications).where(notifications.c.id == nid)).mappings().one()
    assert row["status"] == "pending"
    assert row["send_attempts"] == 1
    assert "421" in row["last_error"]
    assert pipeline.mail.sent == []
    retry_at = row["claimed_until"]
    timing = pipeline.c.settings.timing
    assert retry_at == pipeline.clock.now() + timedelta(seconds=timing.mail_retry_base_s)
    assert timedelta(seconds=timing.claim_lease_s) > retry_at - pipeline.clock.now()
    assert due_emails(pipeline.c, pipeline.clock.now()) == 0  # backing off: not claimed
    pipeline.advance(retry_at - pipeline.clock.now() - timedelta(seconds=1))
    assert due_emails(pipeline.c, pipeline.clock.now()) == 0
    pipeline.advance(timedelta(seconds=1))
    # Enqueued as soon as the backoff ends, not when an enqueue lease taken meanwhile runs out.
    assert due_emails(pipeline.c, pipeline.clock.now()) == 1
    pipeline.drain()
    assert len(pipeline.mail.sent) == 1
    assert pipeline.mail.sent[0]["Message-ID"] == message_id_for(
        "payment_failed:in_1", pipeline.c.settings.mail_from
    )
    assert due_emails(pipeline.c, pipeline.clock.now()) == 0
    assert send_notifications(pipeline.c, [nid], pipeline.clock.now()) == {}  # already sent


def test_permanent_failure_is_recorded_and_not_retried(pipeline: Pipeline) -> None:
    pipeline.add_customer()
    pipeline.mail.fail_next(1, MailPermanent("550 no such user"))
    record_failure(
        pipeline.c,
        FailedCharge(
            "in_1",
            "sub_cus_1",
            500,
            "EUR",
            Decline("insufficient_funds", "51"),
            pipeline.clock.now(),
        ),
        pipeline.clock.now(),
    )
    pipeline.drain()
    with pipeline.c.engine.connect() as conn:
        row = conn.execute(select(notifications)).mappings().one()
    assert row["status"] == "failed"
    assert "550" in row["last_error"]
    pipeline.advance(timedelta(days=1))
    assert due_emails(pipeline.c, pipeline.clock.now()) == 0


def test_quiet_hours_delay_the_email(pipeline: Pipeline) -> None:
    pipeline.clock.advance(timedelta(hours=5))  # 15:00 UTC is midnight in Tokyo
    pipeline.add_customer(timezone="Asia/Tokyo")
    now = pipeline.clock.now()
    record_failure(
        pipeline.c,
        FailedCharge("in_1", "sub_cus_1", 500, "EUR", Decline("insufficient_funds", "51"), now),
        now,
    )
    pipeline.drain()
    with pipeline.c.engine.connect() as conn:
        row = conn.execute(select(notifications)).mappings().one()
    assert row["not_before"] == now + timedelta(hours=8)  # 08:00 in Tokyo
    assert pipeline.mail.sent == []  # the immediate send found it not yet due


def test_invoice_emails_copy_the_billing_addresses(pipeline: Pipeline) -> None:
    pipeline.add_customer(billing_emails=("books@example.com",))
    record_failure(
        pipeline.c,
        FailedCharge(
            "in_1",
            "sub_cus_1",
            500,
            "EUR",
            Decline("insufficient_funds", "51"),
            pipeline.clock.now(),
        ),
        pipeline.clock.now(),
    )
    pipeline.drain()
    assert pipeline.mail.sent
    assert pipeline.mail.sent[0]["Cc"] == "books@example.com"


def test_customer_name_is_escaped_in_html(pipeline: Pipeline) -> None:
    pipeline.add_customer(name="<script>alert(1)</script>")
    record_failure(
        pipeline.c,
        FailedCharge(
            "in_1",
            "sub_cus_1",
            500,
            "EUR",
            Decline("insufficient_funds", "51"),
            pipeline.clock.now(),
        ),
        pipeline.clock.now(),
    )
    pipeline.drain()
    html = pipeline.mail.sent[0].get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
