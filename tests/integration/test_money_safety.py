"""No charge that should not happen, whatever the timing: each test holds a real charge at the
gateway's door while another connection changes the invoice, on PostgreSQL, then lets it go.

- every charge path takes its attempt through one compare-and-set that requires the invoice
  owed, unpaused, of a live subscription, with no charge in flight;
- money collected for an invoice that is no longer owed is kept as an overpayment to refund,
  never dropped;
- an answer that comes after a look-up found nothing is applied, not discarded;
- operators and paid-elsewhere reports wait for a charge in flight.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from dunning.bootstrap import Container
from dunning.cli.main import main
from dunning.errors import InvalidTransition
from dunning.gateways.base import CardToken
from dunning.model import Initiator
from dunning.services import lifecycle, operator
from dunning.services.cards import replace_card
from dunning.services.charging import ChargeOrder, charge
from dunning.services.failures import FailedCharge, record_failure
from dunning.services.resolver import resolve_attempt
from dunning.store.tables import audit_log, overpayments, payment_attempts
from dunning.web.app import create_app
from tests.integration.money import Book, book, finished, in_thread
from tests.unit.ops.conftest import TestClient

pytestmark = pytest.mark.integration
__all__ = ["book"]  # the fixture

NEW_CARD = CardToken("sbx_ok_new", "visa", "4242", 12, 2031)


def _interlope(book: Book, what: str, invoice_id: str) -> None:
    now = book.now
    if what == "paid_elsewhere":
        assert lifecycle.invoice_paid_elsewhere(book.c, invoice_id, now) == "paid"
    elif what == "paused":
        operator.pause(book.c, invoice_id, now, reason="customer is on holiday", by="maria")
    elif what == "cancelled":
        sub = book.invoice(invoice_id)["subscription_id"]
        lifecycle.cancel_subscription(book.c, sub, now)


@pytest.mark.parametrize("what", ["paid_elsewhere", "paused", "cancelled"])
def test_the_card_page_does_not_charge_an_invoice_that_changed_after_it_was_listed(
    book: Book, what: str
) -> None:
    # Given two owed invoices; the card update lists both, then charges the older one
    book.add_customer("ana", subs=2)
    first, second = book.fail("ana", 0), book.fail("ana", 1)
    held = book.gateway.hold(f"inv_{first}_att_2")
    thread, out = in_thread(replace_card, book.c, "ana", NEW_CARD, remove_old=True, now=book.now)
    assert held.started.wait(10)
    # When the second invoice is paid elsewhere, paused or cancelled during that charge
    _interlope(book, what, second)
    held.go.set()
    result = finished(thread, out)
    # Then only the first invoice is charged
    assert result.charged[first] == "succeeded"
    assert result.charged[second] in ("skipped", "paused")
    assert book.successes(first) == 1
    assert book.successes(second) == 0
    assert [e.idempotency_key for e in book.ledger()] == [f"inv_{first}_att_2"]


def test_a_success_for_an_invoice_cancelled_mid_charge_is_kept_as_an_overpayment(
    book: Book,
) -> None:
    book.add_customer("bo")
    invoice_id = book.fail("bo")
    held = book.gateway.hold(f"inv_{invoice_id}_att_2")
    thread, out = in_thread(
        charge, book.c, [ChargeOrder(invoice_id, Initiator.customer, "card_updated")], book.now
    )
    assert held.started.wait(10)
    lifecycle.cancel_subscription(book.c, "sub_bo_0", book.now)  # the invoice is void now
    held.go.set()
    assert finished(thread, out) == {invoice_id: "succeeded"}
    # The money was taken: it is recorded, audited and waits for a refund
    assert book.invoice(invoice_id)["status"] == "void"
    with book.c.engine.connect() as conn:
        over = conn.execute(select(overpayments)).mappings().all()
        kinds = set(conn.execute(select(audit_log.c.kind)).scalars())
    assert [(o["invoice_id"], o["reason"], o["status"], o["amount"]) for o in over] == [
        (invoice_id, "not_owed", "refund_due", 2900)
    ]
    assert over[0]["attempt_key"] == f"inv_{invoice_id}_att_2"
    assert "overpayment" in kinds


def test_a_late_success_after_a_look_up_found_nothing_is_applied_and_flagged(
    book: Book,
) -> None:
    # Given a charge held so long that the resolver looks it up and finds nothing
    book.add_customer("cy")
    invoice_id = book.fail("cy")
    first_key = f"inv_{invoice_id}_att_2"
    held = book.gateway.hold(first_key)
    thread, out = in_thread(
        charge, book.c, [ChargeOrder(invoice_id, Initiator.customer, "card_updated")], book.now
    )
    assert held.started.wait(10)
    later = book.now + timedelta(minutes=10)  # a partition: the resolver's clock moved on
    assert resolve_attempt(book.c, first_key, later) == "not_charged"
    # and the invoice is retried (and paid) under a new key meanwhile
    retry = ChargeOrder(invoice_id, Initiator.merchant, "retry_after_unknown", attempt_no=3)
    assert charge(book.c, [retry], later) == {invoice_id: "succeeded"}
    # When the first charge's answer arrives after all
    held.go.set()
    finished(thread, out)
    # Then it is applied, not discarded, and the second payment waits for a refund
    with book.c.engine.connect() as conn:
        statuses = dict(
            conn.execute(
                select(payment_attempts.c.idempotency_key, payment_attempts.c.status)
            ).all()
        )
        over = conn.execute(select(overpayments)).mappings().all()
    assert statuses[first_key] == "succeeded"
    assert book.successes(invoice_id) == 2
    assert [(o["attempt_key"], o["reason"]) for o in over] == [(first_key, "paid_twice")]


def test_the_card_path_stamps_an_attempt_when_it_is_sent_not_when_the_page_was_opened(
    book: Book,
) -> None:
    # A slow verification: the attempt must not look older than its call
    book.add_customer("di")
    invoice_id = book.fail("di")
    held = book.gateway.hold("verify:di")
    thread, out = in_thread(replace_card, book.c, "di", NEW_CARD, remove_old=True, now=book.now)
    assert held.started.wait(10)
    held.go.set()
    finished(thread, out)
    with book.c.engine.connect() as conn:
        stamp = conn.execute(
            select(payment_attempts.c.created_at).where(payment_attempts.c.attempt_no == 2)
        ).scalar_one()
    assert stamp > book.now + timedelta(seconds=30)  # the clock at the call, not ``now``
    assert book.successes(invoice_id) == 1


def test_mark_paid_and_retry_refuse_while_a_charge_is_in_flight(book: Book) -> None:
    book.add_customer("ed")
    invoice_id = book.fail("ed")
    held = book.gateway.hold(f"inv_{invoice_id}_att_2")
    thread, out = in_thread(
        charge, book.c, [ChargeOrder(invoice_id, Initiator.customer, "card_updated")], book.now
    )
    assert held.started.wait(10)
    with pytest.raises(InvalidTransition, match="outcome is not known yet"):
        operator.mark_paid(book.c, invoice_id, book.now, reason="paid by bank transfer", by="o")
    with pytest.raises(InvalidTransition, match="outcome is not known yet"):
        operator.retry(book.c, invoice_id, book.now, reason="customer asked", by="o")
    assert lifecycle.invoice_paid_elsewhere(book.c, invoice_id, book.now) == "deferred"
    held.go.set()
    finished(thread, out)
    assert book.invoice(invoice_id)["status"] == "paid"
    assert book.successes(invoice_id) == 1


def test_an_operator_retry_of_a_cancelled_subscriptions_invoice_is_refused(book: Book) -> None:
    book.add_customer("fi")
    invoice_id = book.fail("fi")
    with book.c.engine.begin() as conn:  # cancelled with the invoice left open (an import)
        conn.exec_driver_sql("UPDATE subscriptions SET status = 'cancelled'")
    with pytest.raises(InvalidTransition, match="cancelled subscription"):
        operator.retry(book.c, invoice_id, book.now, reason="customer asked", by="o")
    scheduled = ChargeOrder(invoice_id, Initiator.merchant, "operator_retry", attempt_no=2)
    assert charge(book.c, [scheduled], book.now + timedelta(days=5)) == {invoice_id: "skipped"}
    assert book.ledger() == []


def test_a_failure_reported_for_a_cancelled_subscription_opens_a_void_invoice(
    book: Book,
) -> None:
    book.add_customer("gu")
    lifecycle.cancel_subscription(book.c, "sub_gu_0", book.now)
    failure = FailedCharge("in_late", "sub_gu_0", 2900, "EUR", None, book.now)
    assert record_failure(book.c, failure, book.now) == "cancelled"
    inv = book.invoice("in_late")
    assert (inv["status"], inv["next_attempt_at"], inv["next_step_at"]) == ("void", None, None)
    assert book.mail.sent == []
    assert book.ledger() == []


def test_an_overpayment_is_shown_to_operators_until_it_is_refunded(
    book: Book, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a charge that succeeded after the invoice was paid elsewhere
    book.add_customer("ho")
    invoice_id = book.fail("ho")
    held = book.gateway.hold(f"inv_{invoice_id}_att_2")
    order = ChargeOrder(invoice_id, Initiator.customer, "card_updated")
    thread, out = in_thread(charge, book.c, [order], book.now)
    assert held.started.wait(10)
    with book.c.engine.begin() as conn:  # a payment recorded behind the pipeline's back
        conn.exec_driver_sql(f"UPDATE invoices SET status = 'paid' WHERE id = '{invoice_id}'")
    held.go.set()
    finished(thread, out)
    monkeypatch.setenv("DUNNING_DATABASE_URL", book.c.settings.database_url)
    capsys.readouterr()
    # Then `dunning status` and `dunning refunds list` show it
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["refunds_due"] == {"count": 1, "amounts": {"EUR": 2900}}
    assert main(["refunds", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(o["invoice_id"], o["reason"]) for o in listed] == [(invoice_id, "paid_twice")]
    # and the /ops page
    ops = page_of(book.c)
    assert invoice_id in ops
    assert "paid twice" in ops
    # When an operator records the refund, it is no longer due, and the audit says who
    assert main(["refunds", "done", str(listed[0]["id"]), "--note", "re_123", "--by", "maria"]) == 0
    assert main(["refunds", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == []
    with book.c.engine.connect() as conn:
        who = conn.execute(
            select(audit_log.c.actor).where(audit_log.c.kind == "overpayment_refunded")
        ).scalar_one()
    assert who == "maria"
    assert main(["refunds", "done", str(listed[0]["id"]), "--note", "again"]) == 1


def page_of(c: Container) -> str:
    """The /ops page as an operator sees it."""
    client = TestClient(create_app(c))
    auth = (c.settings.ops.username, c.settings.ops.password.get_secret_value())
    response = client.get("/ops", auth=auth)
    assert response.status_code == 200
    return response.text
