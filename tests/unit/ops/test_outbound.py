"""Outbound webhooks: what is emitted to whom, how it is signed, and how failures are retried."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import insert

from dunning.cli.main import main
from dunning.gateways.base import CardToken
from dunning.model import SubscriptionStatus
from dunning.ops.endpoints import add_endpoint, remove_endpoint
from dunning.services import operator, outbound, outbound_delivery
from dunning.services.cards import replace_card
from dunning.services.settlement import Payment, settle
from dunning.services.subscription_state import move_subscription
from dunning.store import rows
from dunning.store.tables import (
    notifications,
    outbound_events,
    subscriptions,
    webhook_endpoints,
)
from dunning.store.uow import transaction
from dunning.webhooks.destinations import endpoint_rules
from dunning.webhooks.signatures import standard_headers, verify_standard
from schedules.producers import PRODUCERS, due_outbound
from tests.unit.ops.conftest import Book, Receiver
from workers.actors import ACTORS

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def endpoint(book: Book, url: str, events: tuple[str, ...] = ()) -> int:
    with transaction(book.c.engine) as conn:
        endpoint_id, _ = add_endpoint(
            conn, url, book.now, rules=endpoint_rules(book.c.settings), events=events, secret=SECRET
        )
    return endpoint_id


def events(book: Book) -> list[dict[str, object]]:
    return [dict(r) for r in book.rows(outbound_events)]


def deliver(book: Book, ids: list[int]) -> list[str]:
    return [outbound_delivery.deliver_one(book.c, i, book.now) for i in ids]


def test_the_domain_vector_signs_and_verifies() -> None:
    body = b'{"test": 2432232314}'
    headers = standard_headers(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert verify_standard(
        SECRET,
        headers["webhook-id"],
        headers["webhook-timestamp"],
        body,
        headers["webhook-signature"],
        now_s=1614265330,
    ) == 1614265330  # fmt: skip


def test_emit_writes_one_row_per_endpoint_that_wants_the_event(book: Book) -> None:
    every = endpoint(book, "https://a.example/hooks")
    only_cards = endpoint(book, "https://b.example/hooks", ("card.updated",))
    gone = endpoint(book, "https://c.example/hooks")
    with transaction(book.c.engine) as conn:
        remove_endpoint(conn, gone, book.now)
        ids = outbound.emit(conn, "invoice.recovered", {"invoice_id": "in_1"}, book.now)
        outbound.emit(conn, "card.updated", {"customer_id": "c"}, book.now)
    rows = events(book)
    assert len(ids) == 1
    assert sorted((r["endpoint_id"], r["type"]) for r in rows) == [
        (every, "card.updated"),
        (every, "invoice.recovered"),
        (only_cards, "card.updated"),
    ]
    by_type = {r["type"]: r for r in rows if r["endpoint_id"] == every}
    card_ids = {r["message_id"] for r in rows if r["type"] == "card.updated"}
    assert len(card_ids) == 1
    assert str(card_ids.pop()).startswith("msg_")
    assert by_type["invoice.recovered"]["payload"] == {
        "type": "invoice.recovered",
        "timestamp": book.now.isoformat(),
        "data": {"invoice_id": "in_1"},
    }


def test_emit_without_endpoints_writes_nothing(book: Book) -> None:
    with transaction(book.c.engine) as conn:
        assert outbound.emit(conn, "card.updated", {}, book.now) == []
    assert events(book) == []


def test_pipeline_changes_emit_their_events(book: Book) -> None:
    endpoint(book, "https://a.example/hooks")
    book.add_customer("a", amount=1500, currency="EUR")
    invoice = book.fail("a")
    with transaction(book.c.engine) as conn:
        sub = rows.get(conn, subscriptions, "sub_a")
        move_subscription(conn, sub, SubscriptionStatus.suspended, book.now, reason="window_over")
    with transaction(book.c.engine) as conn:
        settle(conn, book.c, [Payment(invoice, "retry")], book.now)
    book.add_customer("b")
    other = book.fail("b")
    operator.apply(book.c, "write-off", other, book.now, reason="gone", by="o")
    sent = [(r["type"], r["payload"]["data"]) for r in events(book)]  # type: ignore[index]
    types = [t for t, _ in sent]
    assert types == [
        "subscription.past_due",
        "invoice.payment_failed",
        "subscription.suspended",
        "subscription.reactivated",
        "invoice.recovered",
        "subscription.past_due",
        "invoice.payment_failed",
        "invoice.written_off",
    ]
    sent = [s for s in sent if s[0] not in ("subscription.past_due", "invoice.payment_failed")]
    recovered = sent[2][1]
    assert recovered["invoice_id"] == invoice
    assert recovered["amount"] == 1500
    assert recovered["currency"] == "EUR"
    assert recovered["status"] == "paid"
    assert sent[1][1]["previous_status"] == "suspended"
    assert sent[3][1]["status"] == "uncollectible"
    assert "sbx_" not in json.dumps([d for _, d in sent])  # no card token in any payload


def test_delivery_is_signed_and_carries_a_stable_id(book: Book, receiver: Receiver) -> None:
    endpoint(book, receiver.url)
    with transaction(book.c.engine) as conn:
        (event_id,) = outbound.emit(conn, "card.expiring", {"customer_id": "c1"}, book.now)
    assert deliver(book, [event_id]) == ["delivered"]
    (got,) = receiver.received
    row = book.row(outbound_events, event_id)
    assert got.headers["webhook-id"] == row["message_id"]
    assert got.headers["content-type"] == "application/json"
    assert verify_standard(
        SECRET,
        got.headers["webhook-id"],
        got.headers["webhook-timestamp"],
        got.body,
        got.headers["webhook-signature"],
        now_s=book.now.timestamp(),
    ) == int(book.now.timestamp())  # fmt: skip
    assert json.loads(got.body)["data"] == {"customer_id": "c1"}
    assert (row["status"], row["attempts"], row["delivered_at"]) == ("delivered", 1, book.now)
    assert deliver(book, [event_id]) == ["skipped"]  # a duplicate message sends nothing
    assert len(receiver.received) == 1


def test_failures_back_off_then_fail_and_mark_the_endpoint_failing(
    book: Book, receiver: Receiver
) -> None:
    endpoint_id = endpoint(book, receiver.url)
    receiver.statuses = [500] * 20
    with transaction(book.c.engine) as conn:
        (event_id,) = outbound.emit(conn, "card.updated", {"customer_id": "c1"}, book.now)
    waits = []
    for _ in range(len(outbound_delivery.RETRY_DELAYS)):
        assert deliver(book, [event_id]) == ["retrying"]
        due = book.row(outbound_events, event_id)["next_attempt_at"]
        waits.append(due - book.now)
        assert deliver(book, [event_id]) == ["skipped"]  # not due before its time
        book.clock.set(due)
    assert tuple(waits) == outbound_delivery.RETRY_DELAYS
    assert timedelta(hours=20) < sum(waits, timedelta()) < timedelta(hours=36)
    assert deliver(book, [event_id]) == ["failed"]
    row = book.row(outbound_events, event_id)
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "failed",
        len(outbound_delivery.RETRY_DELAYS) + 1,
        "HTTP 500",
    )
    ep = book.row(webhook_endpoints, endpoint_id)
    assert ep["status"] == "failing"
    assert ep["failing_since"] == book.now
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(receiver.received) == len(outbound_delivery.RETRY_DELAYS) + 1
    assert len(ids) == 1

    # a failing endpoint still gets new events; one delivered makes it active again
    receiver.statuses = []
    with transaction(book.c.engine) as conn:
        (later,) = outbound.emit(conn, "card.updated", {"customer_id": "c2"}, book.now)
    assert deliver(book, [later]) == ["delivered"]
    ep = book.row(webhook_endpoints, endpoint_id)
    assert (ep["status"], ep["failing_since"]) == ("active", None)


def test_an_unreachable_endpoint_is_retried(book: Book) -> None:
    endpoint(book, "http://127.0.0.1:9/hooks")  # discard port: connection refused
    with transaction(book.c.engine) as conn:
        (event_id,) = outbound.emit(conn, "card.updated", {}, book.now)
    assert deliver(book, [event_id]) == ["retrying"]
    assert "ConnectError" in book.row(outbound_events, event_id)["last_error"]


def test_producer_claims_due_events_once_per_lease(book: Book) -> None:
    endpoint(book, "https://a.example/hooks")
    with transaction(book.c.engine) as conn:
        ids = [outbound.emit(conn, "card.updated", {"n": n}, book.now)[0] for n in range(3)]
    assert due_outbound(book.c, book.now) == 3
    assert sorted(book.dispatcher.sent["deliver_outbound"]) == sorted(ids)
    assert due_outbound(book.c, book.now) == 0
    book.advance(timedelta(seconds=book.c.settings.timing.claim_lease_s + 1))
    assert due_outbound(book.c, book.now) == 3


def test_actor_and_producer_are_registered() -> None:
    _, queue, options = ACTORS["deliver_outbound"]
    assert queue == "maintenance"
    assert options["max_retries"] == 5
    assert PRODUCERS["due_outbound"] == (due_outbound, "outbox_scan_interval_s")


def test_removing_an_endpoint_cancels_its_pending_events(book: Book) -> None:
    endpoint_id = endpoint(book, "https://a.example/hooks")
    with transaction(book.c.engine) as conn:
        outbound.emit(conn, "card.updated", {}, book.now)
        assert remove_endpoint(conn, endpoint_id, book.now) == 1
    assert [r["status"] for r in events(book)] == ["cancelled"]


def test_endpoints_cli_add_list_remove(
    book: Book, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNNING_DATABASE_URL", book.url)
    assert (
        main(["endpoints", "add", "https://m.example/h", "--events", "card.updated", "--json"]) == 0
    )
    added = json.loads(capsys.readouterr().out)
    assert added["secret"].startswith("whsec_")
    assert len(added["secret"]) > 30
    assert main(["endpoints", "add", "https://m.example/h", "--events", "nope.event"]) == 2
    assert main(["endpoints", "add", "https://m.example/h", "--secret", "whsec_!!"]) == 2
    capsys.readouterr()
    assert main(["endpoints", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["endpoints"]
    assert [(e["id"], e["events"], e["status"]) for e in listed] == [
        (added["id"], ["card.updated"], "active")
    ]
    assert "secret" not in listed[0]
    assert main(["endpoints", "remove", str(added["id"])]) == 0
    assert main(["endpoints", "remove", str(added["id"])]) == 2  # removed: it does not exist
    capsys.readouterr()
    assert main(["endpoints", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["endpoints"] == []


def test_a_replaced_card_emits_card_updated_without_the_token(book: Book) -> None:
    endpoint(book, "https://a.example/hooks")
    book.add_customer("a")
    new = CardToken("sbx_ok_new1", "mastercard", "4444", 3, 2031)
    replace_card(book.c, "a", new, remove_old=True, now=book.now, payment_method_id="pm_new")
    (row,) = events(book)
    assert row["type"] == "card.updated"
    assert row["payload"]["data"] == {  # type: ignore[index]
        "customer_id": "a",
        "card": {
            "payment_method_id": "pm_new",
            "brand": "mastercard",
            "last4": "4444",
            "exp_month": 3,
            "exp_year": 2031,
        },
        "previous": {
            "payment_method_id": "pm_a",
            "brand": "visa",
            "last4": "4242",
            "exp_month": 12,
            "exp_year": 2030,
        },
    }


def test_each_new_expiry_reminder_emits_card_expiring(book: Book) -> None:
    endpoint(book, "https://a.example/hooks", ("card.expiring",))
    book.add_customer("a")
    book.add_customer("b")
    rows = [
        {
            "dedup_key": f"card_expiring:pm_{cid}:2026-04:30d",
            "kind": "card_expiring",
            "customer_id": cid,
            "payment_method_id": f"pm_{cid}",
            "to_addr": f"{cid}@example.com",
            "cc": [],
            "locale": "en",
            "context": {"expires_on": "2026-04-30"},
            "not_before": book.now,
            "message_id": f"<{cid}@x>",
            "created_at": book.now,
        }
        for cid in ("a", "b")
    ]
    with transaction(book.c.engine) as conn:
        ids = list(
            conn.execute(insert(notifications).returning(notifications.c.id), rows).scalars()
        )
        outbound.cards_expiring(conn, ids, book.now)
    got = sorted(
        (r["payload"]["data"]["customer_id"], r["payload"]["data"]["reminder"])  # type: ignore[index]
        for r in events(book)
    )
    assert got == [("a", "30d"), ("b", "30d")]
    assert {r["type"] for r in events(book)} == {"card.expiring"}
