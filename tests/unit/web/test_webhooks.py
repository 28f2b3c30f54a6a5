"""The webhook receivers over HTTP: verify, parse, store once, enqueue after commit."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from prometheus_client import REGISTRY

from dunning.bootstrap import bootstrap
from dunning.ports import NullDispatcher
from dunning.store.tables import invoices, subscriptions, webhook_events
from dunning.web.app import create_app
from dunning.webhooks.signatures import sign_quickpay, stripe_signature
from schedules.producers import PRODUCERS
from tests.unit.web.builders import quickpay_recurring, stripe_invoice_event, stripe_other_event
from tests.unit.web.conftest import (
    QP_KEY,
    STRIPE_SECRET,
    TestClient,
    Web,
    make_web,
    web_settings,
)

VECTOR_T = 1700000000
VECTOR_BODY = b'{"id":"evt_test","object":"event","type":"invoice.payment_failed"}'
VECTOR_V1 = "94a0f1dc73e61626ea0def33f249a0f1cb761910f2d1dcb7ad664037dfa01d08"
QP_VECTOR_BODY = (
    b'{"id":7,"order_id":"Order7","accepted":true,"operations":[{"id":1,"type":"authorize",'
    b'"amount":123,"pending":false,"qp_status_code":"20000","qp_status_msg":"Approved",'
    b'"aq_status_code":"000","aq_status_msg":"Approved"}]}'
)
QP_VECTOR_SUM = "1d262a180b1a2751d1d42153fc389b8445063d14fbe78574ff34539a9ef9a111"


def counted(provider: str, kind: str, result: str) -> float:
    labels = {"provider": provider, "type": kind, "result": result}
    return REGISTRY.get_sample_value("dunning_webhook_events_total", labels) or 0.0


def stripe_post(web: Web, body: bytes, header: str) -> Any:
    return web.client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})


# -- the docs/webhooks.md vectors ------------------------------------------------------------------


@pytest.fixture
def web_2023(tmp_path: Path) -> Iterator[Web]:
    yield from make_web(web_settings(tmp_path), start=datetime.fromtimestamp(VECTOR_T + 10, UTC))


def test_stripe_vector_passes_the_signature_and_is_then_refused_as_an_incomplete_event(
    web_2023: Web,
) -> None:
    ok = stripe_post(web_2023, VECTOR_BODY, f"t={VECTOR_T},v1={VECTOR_V1}")
    changed = stripe_post(
        web_2023, VECTOR_BODY.replace(b"evt_test", b"evt_tesT"), f"t={VECTOR_T},v1={VECTOR_V1}"
    )

    assert ok.status_code == 400
    assert ok.json()["error"].startswith("malformed event")  # past the signature check
    assert changed.status_code == 400
    assert changed.json() == {"error": "signature mismatch"}
    assert web_2023.count(webhook_events) == 0


def test_quickpay_vector_passes_the_checksum(web: Web) -> None:
    assert sign_quickpay(QP_VECTOR_BODY, QP_KEY) == QP_VECTOR_SUM
    ok = web.client.post(
        "/webhooks/quickpay",
        content=QP_VECTOR_BODY,
        headers={"QuickPay-Checksum-Sha256": QP_VECTOR_SUM},
    )
    wrong = web.client.post(
        "/webhooks/quickpay",
        content=QP_VECTOR_BODY,
        headers={"QuickPay-Checksum-Sha256": QP_VECTOR_SUM[:-1] + "0"},
    )

    assert (ok.status_code, ok.json()) == (400, {"error": "malformed event: currency: missing"})
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "signature mismatch"}


# -- refusals: 400 and nothing stored -----------------------------------------------------------


def _bad_stripe_requests(web: Web) -> dict[str, tuple[bytes, dict[str, str]]]:
    body = json.dumps(stripe_invoice_event(created=web.now)).encode()
    t = int(web.now.timestamp())
    good = stripe_signature(body, STRIPE_SECRET, t)
    old = t - 301
    return {
        "one byte changed": (
            body.replace(b"1900", b"1901"),
            {"Stripe-Signature": f"t={t},v1={good}"},
        ),
        "stale timestamp": (
            body,
            {"Stripe-Signature": f"t={old},v1={stripe_signature(body, STRIPE_SECRET, old)}"},
        ),
        "missing v1": (body, {"Stripe-Signature": f"t={t}"}),
        "wrong key": (
            body,
            {"Stripe-Signature": f"t={t},v1={stripe_signature(body, 'whsec_wrong', t)}"},
        ),
        "no header": (body, {}),
    }


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("one byte changed", "signature mismatch"),
        ("stale timestamp", "stale timestamp"),
        ("missing v1", "no v1 signature"),
        ("wrong key", "signature mismatch"),
        ("no header", "missing header"),
    ],
)
def test_bad_stripe_signatures_are_400_and_change_nothing(
    web: Web, case: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    body, headers = _bad_stripe_requests(web)[case]
    before = web.snapshot()
    refused = counted("stripe", "unknown", "bad_signature")

    with caplog.at_level(logging.INFO):
        response = web.client.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == 400
    assert response.json() == {"error": reason}
    assert web.snapshot() == before
    assert web.queued() == 0
    assert counted("stripe", "unknown", "bad_signature") == refused + 1
    assert any(reason in r.getMessage() for r in caplog.records)
    assert "jenny@example.com" not in caplog.text  # the body is never logged


def test_quickpay_with_wrong_or_missing_checksum_is_400(web: Web) -> None:
    body = json.dumps(quickpay_recurring()).encode()
    before = web.snapshot()

    wrong = web.client.post(
        "/webhooks/quickpay",
        content=body,
        headers={"QuickPay-Checksum-Sha256": sign_quickpay(body, "qp_other_key")},
    )
    missing = web.client.post("/webhooks/quickpay", content=body)

    assert (wrong.status_code, wrong.json()) == (400, {"error": "signature mismatch"})
    assert (missing.status_code, missing.json()) == (400, {"error": "missing header"})
    assert web.snapshot() == before


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "malformed event: body: not JSON"),
        (b"[1, 2]", "malformed event: body: not a JSON object"),
        (b'{"id": NaN}', "malformed event: body: not JSON"),
        (b'{"id": 1e999}', "malformed event: body: not JSON"),
        (b"[" * 5000 + b"]" * 5000, "malformed event: body: not JSON"),
        (b'{"id": "evt_1", "type": "invoice.paid"}', "malformed event: created"),
    ],
)
def test_validly_signed_malformed_bodies_are_400(web: Web, body: bytes, reason: str) -> None:
    before = web.snapshot()

    response = web.post_stripe(body)

    assert response.status_code == 400
    assert response.json()["error"].startswith(reason)
    assert web.snapshot() == before


# -- sizes --------------------------------------------------------------------------------------


def test_declared_body_over_the_limit_is_413(tmp_path: Path) -> None:
    for web in make_web(web_settings(tmp_path, webhook_max_body_bytes=1024)):
        payload = stripe_invoice_event(created=web.now)
        payload["padding"] = "x" * 2000
        response = web.post_stripe(payload)
        assert response.status_code == 413
        assert response.json() == {"error": "body too large"}
        assert web.count(webhook_events) == 0


def test_streamed_body_over_the_limit_is_413_without_a_content_length(tmp_path: Path) -> None:
    for web in make_web(web_settings(tmp_path, webhook_max_body_bytes=1024)):
        body = json.dumps({**stripe_invoice_event(created=web.now), "pad": "x" * 4000}).encode()
        t = int(web.now.timestamp())
        header = f"t={t},v1={stripe_signature(body, STRIPE_SECRET, t)}"
        pieces = [body[i : i + 500] for i in range(0, len(body), 500)]

        response = web.client.post(
            "/webhooks/stripe", content=iter(pieces), headers={"Stripe-Signature": header}
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert web.count(webhook_events) == 0


def test_body_at_the_limit_is_accepted(tmp_path: Path) -> None:
    for web in make_web(web_settings(tmp_path, webhook_max_body_bytes=4096)):
        payload = stripe_invoice_event(created=web.now)
        size = len(json.dumps(payload).encode())
        payload["pad"] = "x" * (4096 - size - len(', "pad": ""'))
        assert len(json.dumps(payload).encode()) == 4096
        assert web.post_stripe(payload).status_code == 200


# -- storing, duplicates, ignored types ---------------------------------------------------------


@pytest.mark.parametrize("shape", ["basil", "legacy"])
def test_both_invoice_shapes_open_an_invoice_once_processed(web: Web, shape: Any) -> None:
    before = counted("stripe", "invoice.payment_failed", "accepted")

    response = web.post_stripe(stripe_invoice_event(shape=shape, created=web.now))

    assert (response.status_code, response.json()) == (200, {"status": "accepted"})
    assert web.queued("events") == 1  # enqueued after commit, not processed inline
    assert web.count(invoices) == 0
    web.drain()
    assert web.row(invoices, "in_1")["status"] == "open"
    assert web.row(subscriptions, "sub_1")["status"] == "past_due"
    assert [r["status"] for r in web.rows(webhook_events)] == ["processed"]
    assert counted("stripe", "invoice.payment_failed", "accepted") == before + 1


def test_invoice_paid_after_a_failure_advances_the_invoice(web: Web) -> None:
    web.post_stripe(stripe_invoice_event(created=web.now))
    web.drain()
    web.clock.advance(timedelta(hours=2))

    paid = web.post_stripe(
        stripe_invoice_event("invoice.paid", event_id="evt_2", shape="legacy", created=web.now)
    )
    web.drain()

    assert paid.status_code == 200
    assert web.row(invoices, "in_1")["status"] == "paid"
    assert web.row(subscriptions, "sub_1")["status"] == "active"


def test_the_same_event_twice_is_200_and_stored_once(web: Web) -> None:
    payload = stripe_invoice_event(created=web.now)
    first = web.post_stripe(payload)
    web.drain()
    after_first = web.snapshot()

    web.clock.advance(timedelta(seconds=30))
    second = web.post_stripe(payload)

    assert first.json() == {"status": "accepted"}
    assert (second.status_code, second.json()) == (200, {"status": "duplicate"})
    assert web.snapshot() == after_first
    assert web.queued() == 0


def test_unknown_event_type_is_200_and_stored_as_ignored(web: Web) -> None:
    response = web.post_stripe(
        stripe_other_event("customer.discount.created", event_id="evt_c1", created=web.now)
    )

    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    [row] = web.rows(webhook_events)
    assert (row["status"], row["type"], row["claimed_until"]) == (
        "ignored",
        "customer.discount.created",
        None,
    )
    assert web.queued() == 0


def test_signature_with_a_rotated_secret_and_several_v1_values_is_accepted(web: Web) -> None:
    body = json.dumps(stripe_invoice_event(created=web.now)).encode()
    t = int(web.now.timestamp())
    header = (
        f"t={t},v1={stripe_signature(body, 'whsec_unknown', t)},"
        f"v1={stripe_signature(body, 'whsec_old_secret', t)}"
    )

    assert stripe_post(web, body, header).json() == {"status": "accepted"}


def test_quickpay_callback_opens_the_invoice_of_a_known_subscription(web: Web) -> None:
    web.add_customer("cus_1")

    response = web.post_quickpay(quickpay_recurring())
    again = web.post_quickpay(quickpay_recurring())
    web.drain()

    assert response.json() == {"status": "accepted"}
    assert again.json() == {"status": "duplicate"}
    [row] = web.rows(webhook_events)
    assert (row["provider"], row["event_id"], row["status"]) == (
        "quickpay",
        "510002:1",
        "processed",
    )
    assert web.row(invoices, "in_qp_1")["status"] == "open"
    assert web.row(subscriptions, "sub_cus_1")["status"] == "past_due"


# -- dependencies down: 503 ---------------------------------------------------------------------


def test_database_down_is_503(tmp_path: Path) -> None:
    settings = web_settings(tmp_path, database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    c = bootstrap(settings)
    body = json.dumps(stripe_invoice_event(created=datetime.now(UTC))).encode()
    t = int(datetime.now(UTC).timestamp())
    with TestClient(create_app(c)) as client:
        response = client.post(
            "/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": f"t={t},v1={stripe_signature(body, STRIPE_SECRET, t)}"},
        )
    c.close()

    assert (response.status_code, response.json()) == (503, {"error": "database unavailable"})


class BrokerDown(NullDispatcher):
    def process_events(self, ids: Any) -> None:
        raise dramatiq.errors.ConnectionFailed("redis is down")


def test_broker_down_is_503_and_the_producer_finds_the_event_later(web: Web) -> None:
    dispatcher = web.c.dispatcher
    web.c.dispatcher = BrokerDown()

    response = web.post_stripe(stripe_invoice_event(created=web.now))

    assert (response.status_code, response.json()) == (503, {"error": "broker unavailable"})
    [row] = web.rows(webhook_events)
    assert (row["status"], row["claimed_until"]) == ("received", None)
    assert web.queued() == 0

    web.c.dispatcher = dispatcher
    retried = web.post_stripe(stripe_invoice_event(created=web.now))
    PRODUCERS["due_events"][0](web.c, web.now)
    assert retried.json() == {"status": "duplicate"}
    assert web.queued() == 1
    web.drain()
    assert web.row(invoices, "in_1")["status"] == "open"


def test_a_stored_event_is_claimed_so_the_producer_does_not_enqueue_it_twice(web: Web) -> None:
    web.post_stripe(stripe_invoice_event(created=web.now))

    PRODUCERS["due_events"][0](web.c, web.now)

    assert web.queued() == 1
