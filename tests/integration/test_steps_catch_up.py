"""Steps that fall due together (an old invoice, a stopped scheduler) are caught up as one: the
customer gets the suspension, not a reminder and a final notice for days already past, and no
email promises a retry or a day that is behind it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dunning.mail.render import render_email
from dunning.services.steps import run_due_steps
from dunning.store.tables import audit_log, notifications
from tests.integration.money import Book, book

pytestmark = pytest.mark.integration
__all__ = ["book"]  # the fixture


def _queued(book: Book) -> list[str]:
    with book.c.engine.connect() as conn:
        return list(
            conn.execute(select(notifications.c.kind).order_by(notifications.c.id)).scalars()
        )


def test_final_notice_and_suspension_both_due_send_only_the_suspension(book: Book) -> None:
    # Given an invoice whose first failure was 20 days ago, and no step run since
    book.add_customer("ana")
    invoice_id = book.fail("ana", at=book.now - timedelta(days=20))
    assert _queued(book) == []  # no "payment failed": the window is over already
    # When the steps run
    done = run_due_steps(book.c, invoice_id, book.now)
    # Then only the suspension is carried out and told
    assert done == ["suspend"]
    assert _queued(book) == ["subscription_suspended"]
    with book.c.engine.connect() as conn:
        skipped = (
            conn.execute(select(audit_log.c.data).where(audit_log.c.kind == "step_skipped"))
            .scalars()
            .all()
        )
    assert sorted(s["step"] for s in skipped) == ["final_notice", "payment_retry_failed"]
    inv = book.invoice(invoice_id)
    assert (inv["steps_done"], inv["next_step_at"], inv["stop_reason"]) == (3, None, "window_over")
    assert run_due_steps(book.c, invoice_id, book.now) == []  # nothing twice


def test_an_email_does_not_promise_a_day_already_past_when_it_is_sent(book: Book) -> None:
    book.add_customer("bo")
    book.fail("bo")
    with book.c.engine.connect() as conn:
        ctx = conn.execute(
            select(notifications.c.context).where(notifications.c.kind == "payment_failed")
        ).scalar_one()
    assert ctx["next_attempt_at"] is not None
    on_time = render_email("payment_failed", "en", ctx, brand_name="B", support_email="s@b.example")
    assert "We will try again automatically on" in on_time.text
    # Held back until after the retry day (an outage), it no longer promises that day
    late = book.now + timedelta(days=4)
    held = render_email(
        "payment_failed", "en", ctx, brand_name="B", support_email="s@b.example", sent_at=late
    )
    assert "try again" not in held.text
    assert "try again" not in held.html
    assert "will be suspended" in held.text  # the suspension is still ahead
