"""The merchant is told when dunning begins: ``invoice.payment_failed`` on an invoice's first
failure and ``subscription.past_due`` when its subscription falls behind, each once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from dunning.services import outbound_delivery
from dunning.store.tables import outbound_events
from dunning.webhooks.signatures import verify_standard
from tests.unit.ops.conftest import Book, Receiver
from tests.unit.ops.test_outbound import SECRET, endpoint


def of_type(book: Book, event_type: str) -> list[dict[str, Any]]:
    return [dict(r) for r in book.rows(outbound_events, outbound_events.c.type == event_type)]


def test_first_failure_and_past_due_are_emitted_once(any_book: Book) -> None:
    merchant = endpoint(any_book, "https://merchant.example/hooks")
    only_failures = endpoint(any_book, "https://b.example/hooks", ("invoice.payment_failed",))
    any_book.add_customer("a", amount=2900, currency="EUR")
    any_book.fail("a")
    any_book.advance(timedelta(hours=1))
    any_book.fail("a")  # the gateway reports the same invoice failing again
    any_book.advance(timedelta(days=2))
    any_book.fail("a", "in_a_next")  # the next renewal fails too: the subscription is past due
    failed = of_type(any_book, "invoice.payment_failed")
    # one per invoice, for each of the two endpoints that want it
    assert sorted((r["payload"]["data"]["invoice_id"], r["endpoint_id"]) for r in failed) == [
        ("in_a", merchant),
        ("in_a", only_failures),
        ("in_a_next", merchant),
        ("in_a_next", only_failures),
    ]
    first = next(
        r
        for r in failed
        if r["endpoint_id"] == merchant and r["payload"]["data"]["invoice_id"] == "in_a"
    )
    data = first["payload"]["data"]
    assert data["amount"] == 2900
    assert data["currency"] == "EUR"
    assert data["customer_id"] == "a"
    assert data["subscription_id"] == "sub_a"
    assert data["attempt_count"] == 1
    assert data["status"] == "open"
    assert data["decline_code"] == "insufficient_funds"
    assert data["next_retry_at"] is not None
    assert data["update_card_needed"] is False
    past_due = of_type(any_book, "subscription.past_due")
    assert len(past_due) == 1  # the second endpoint does not want it; the move happens once
    assert past_due[0]["payload"]["data"] == {
        "subscription_id": "sub_a",
        "customer_id": "a",
        "plan": "default",
        "amount": 2900,
        "currency": "EUR",
        "status": "past_due",
        "previous_status": "active",
    }
    assert "sbx_" not in json.dumps([r["payload"] for r in failed + past_due])


def test_the_first_failure_reaches_the_endpoint_signed(any_book: Book, receiver: Receiver) -> None:
    endpoint(any_book, receiver.url, ("invoice.payment_failed",))
    any_book.add_customer("a")
    any_book.fail("a")
    [row] = of_type(any_book, "invoice.payment_failed")
    assert outbound_delivery.deliver_one(any_book.c, int(row["id"]), any_book.now) == "delivered"
    [got] = receiver.received
    assert verify_standard(
        SECRET,
        got.headers["webhook-id"],
        got.headers["webhook-timestamp"],
        got.body,
        got.headers["webhook-signature"],
        now_s=any_book.now.timestamp(),
    ) == int(any_book.now.timestamp())  # fmt: skip
    body = json.loads(got.body)
    assert body["type"] == "invoice.payment_failed"
    assert body["data"]["invoice_id"] == "in_a"
