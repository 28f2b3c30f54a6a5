"""Quickpay callbacks -> internal events: the newest finished operation decides."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dunning.gateways.base import Decline
from dunning.webhooks.events import (
    ActionRequired,
    CardAttached,
    CardDetached,
    CardInfo,
    Ignored,
    InvoicePaid,
    MalformedEvent,
    PaymentFailed,
)
from dunning.webhooks.quickpay import parse_quickpay, quickpay_envelope
from tests.unit.webhooks.conftest import payload

RECEIVED = datetime(2025, 7, 8, 12, 0, tzinfo=UTC)


def only(raw: Any) -> Any:
    events = parse_quickpay(raw, received_at=RECEIVED)
    assert len(events) == 1
    return events[0]


def op(
    i: int, kind: str, code: str | None, *, pending: bool = False, aq: str | None = None
) -> dict[str, Any]:
    return {
        "id": i,
        "type": kind,
        "amount": 9900,
        "pending": pending,
        "qp_status_code": code,
        "aq_status_code": aq,
    }


def with_ops(*ops: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = payload("qp_recurring_rejected.json")
    raw["operations"] = list(ops)
    return raw


def test_approved_recurring_and_capture_is_invoice_paid() -> None:
    event = only(payload("qp_recurring_approved.json"))
    assert isinstance(event, InvoicePaid)
    assert (event.provider, event.event_id) == ("quickpay", "510001:2")
    assert (event.invoice_ref, event.subscription_ref, event.customer_ref) == (
        "inv-2025-07-0042",
        "88001",
        "cus_0042",
    )
    assert (event.amount, event.currency) == (9900, "DKK")
    assert event.attempt_key == "inv-2025-07-0042:att_2"
    assert event.occurred_at == datetime(2025, 7, 8, 9, 0, 2, tzinfo=UTC)


def test_rejected_by_acquirer_carries_the_network_code() -> None:
    event = only(payload("qp_recurring_rejected.json"))
    assert isinstance(event, PaymentFailed)
    assert event.event_id == "510002:1"
    assert event.decline == Decline(decline_code="40000", network_code="51")
    assert event.card == CardInfo("88001", "visa", "0008", 3, 2028)


def test_gateway_error_is_reported_as_the_transient_code_without_a_network_code() -> None:
    event = only(payload("qp_gateway_error.json"))
    assert isinstance(event, PaymentFailed)
    assert event.decline == Decline(decline_code="50000")


def test_3ds_required_is_action_required() -> None:
    event = only(payload("qp_3ds_required.json"))
    assert isinstance(event, ActionRequired)
    assert event.decline == Decline(decline_code="30100")


def test_dead_credential_is_a_failure_with_its_own_code() -> None:
    event = only(payload("qp_dead_credential.json"))
    assert isinstance(event, PaymentFailed)
    assert event.decline == Decline(decline_code="42300")


def test_pending_operation_is_ignored_and_does_not_take_the_final_event_id() -> None:
    pending = only(payload("qp_pending.json"))
    assert isinstance(pending, Ignored)
    assert pending.event_id == "510006:1:pending"
    assert pending.type == "payment.recurring.pending"
    final = payload("qp_pending.json")
    final["operations"][0].update(pending=False, qp_status_code="40000", aq_status_code="05")
    event = only(final)
    assert isinstance(event, PaymentFailed)
    assert event.event_id == "510006:1"


def test_newest_finished_operation_decides_and_pending_ones_are_skipped() -> None:
    raw = with_ops(
        op(1, "recurring", "40000", aq="51"),
        op(2, "recurring", "20000"),
        op(3, "capture", None, pending=True),
    )
    event = only(raw)
    assert isinstance(event, InvoicePaid)
    assert event.event_id == "510002:2"


def test_operations_are_ordered_by_id_not_position() -> None:
    raw = with_ops(op(2, "recurring", "20000"), op(1, "recurring", "40000"))
    assert isinstance(only(raw), InvoicePaid)


def test_refund_only_payment_is_ignored() -> None:
    event = only(with_ops(op(4, "refund", "20000")))
    assert isinstance(event, Ignored)
    assert (event.event_id, event.type) == ("510002:4", "payment.refund")


def test_subscription_authorized_is_a_card_attached() -> None:
    event = only(payload("qp_subscription_authorized.json"))
    assert isinstance(event, CardAttached)
    assert event.event_id == "s88001:1"
    assert event.card == CardInfo("88001", "visa", "0008", 3, 2028)
    assert event.customer_ref == "cus_0042"


def test_subscription_cancelled_is_a_card_detached() -> None:
    raw = payload("qp_subscription_authorized.json")
    raw["operations"].append(op(2, "cancel", "20000"))
    event = only(raw)
    assert isinstance(event, CardDetached)
    assert event.payment_method_ref == "88001"


def test_empty_variables_list_is_accepted() -> None:
    raw = payload("qp_recurring_rejected.json")
    raw["variables"] = []
    event = only(raw)
    assert isinstance(event, PaymentFailed)
    assert event.customer_ref is None


def test_domain_test_vector_body_needs_a_currency_to_become_an_event() -> None:
    raw = {
        "id": 7,
        "order_id": "Order7",
        "accepted": True,
        "operations": [op(1, "authorize", "20000")],
    }
    assert quickpay_envelope(raw) == ("7:1", "payment.authorize")
    with pytest.raises(MalformedEvent, match="currency: missing"):
        parse_quickpay(raw, received_at=RECEIVED)


def test_no_time_anywhere_is_malformed_without_a_receive_time() -> None:
    raw = with_ops(op(1, "recurring", "40000"))
    del raw["updated_at"]
    with pytest.raises(MalformedEvent, match="updated_at"):
        parse_quickpay(raw)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": None}, "id: missing"),
        ({"operations": {"id": 1}}, "operations: expected a list"),
        ({"operations": [op(1, "recurring", None)]}, "operations[0].qp_status_code: missing"),
        (
            {"operations": [{"id": "one", "type": "recurring"}]},
            "operations[0].id: expected an integer",
        ),
        (
            {"operations": [{**op(1, "recurring", "40000"), "pending": "no"}]},
            "operations[0].pending: expected true or false",
        ),
        ({"currency": 208}, "currency: expected a string"),
        ({"variables": "cus_1"}, "variables: expected an object"),
        ({"updated_at": "Tuesday"}, "updated_at: not an ISO 8601 time"),
    ],
)
def test_malformed_callbacks_name_the_field(change: dict[str, Any], reason: str) -> None:
    raw = payload("qp_recurring_rejected.json")
    raw.update(change)
    for o in raw["operations"] if isinstance(raw["operations"], list) else []:
        o.pop("created_at", None)
    with pytest.raises(MalformedEvent) as info:
        parse_quickpay(raw)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0001-01-01T00:00:00+01:00", "updated_at: not an ISO 8601 time"),
        ("9999-12-31T23:59:59-01:00", "updated_at: not an ISO 8601 time"),
        ("1970-01-01T00:00:00Z", "updated_at: not a plausible time"),
    ],
)
def test_times_at_the_edges_of_the_calendar_are_malformed_not_a_crash(
    value: str, reason: str
) -> None:
    raw = payload("qp_recurring_rejected.json")
    raw["updated_at"] = value
    for o in raw["operations"]:
        o.pop("created_at")
    with pytest.raises(MalformedEvent) as info:
        parse_quickpay(raw)
    assert info.value.reason == reason
