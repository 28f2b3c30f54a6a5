"""Stripe events -> internal events, from realistic payloads of both API generations."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from dunning.errors import PermanentError
from dunning.gateways.base import Decline
from dunning.webhooks.events import (
    ActionRequired,
    CardAttached,
    CardAutoUpdated,
    CardDetached,
    CardInfo,
    CustomerChanged,
    CustomerInfo,
    Ignored,
    InvoicePaid,
    MalformedEvent,
    PaymentFailed,
    SubscriptionChanged,
)
from dunning.webhooks.stripe import parse_stripe, stripe_envelope
from tests.unit.webhooks.conftest import payload


def only(name: str) -> Any:
    events = parse_stripe(payload(name))
    assert len(events) == 1
    return events[0]


def test_payment_failed_new_invoice_shape_finds_the_subscription_under_parent() -> None:
    event = only("stripe_invoice_payment_failed_basil.json")
    assert isinstance(event, PaymentFailed)
    assert (event.provider, event.event_id) == ("stripe", "evt_1RiXd0Lkdfk3pWq8basil")
    assert event.occurred_at == datetime(2025, 7, 8, 10, 0, tzinfo=UTC)
    assert event.subscription_ref == "sub_1RaQ8pLkdfk3pWq8"
    assert (event.invoice_ref, event.customer_ref) == (
        "in_1RiXc4Lkdfk3pWq8aa01",
        "cus_SdK2qZ3x8Yf1",
    )
    assert (event.amount, event.currency) == (1900, "EUR")
    assert event.customer == CustomerInfo("cus_SdK2qZ3x8Yf1", "jenny@example.com", "Jenny Rosen")
    # Not expanded: no decline detail on the invoice itself, and none invented.
    assert event.decline == Decline()
    assert event.attempt_key is None
    assert event.card is None


def test_payment_failed_old_invoice_shape_reads_top_level_subscription() -> None:
    event = only("stripe_invoice_payment_failed_legacy.json")
    assert isinstance(event, PaymentFailed)
    assert event.subscription_ref == "sub_1PzLegacySub01"
    assert event.decline == Decline()


def test_payment_failed_takes_decline_detail_from_expanded_intent_and_charge() -> None:
    event = only("stripe_invoice_payment_failed_expanded.json")
    assert isinstance(event, PaymentFailed)
    assert event.decline == Decline(
        decline_code="insufficient_funds",
        network_code="51",
        advice_code="try_again_later",
        network_advice_code="24",  # only the charge's outcome had it
    )
    assert event.card == CardInfo("pm_1RiXb2Lkdfk3pWq8", "visa", "9995", 8, 2027)


def test_payment_failed_reads_the_payments_list_of_new_invoices() -> None:
    raw = payload("stripe_invoice_payment_failed_basil.json")
    intent = {
        "id": "pi_new",
        "metadata": {"idempotency_key": "inv_1:att_4"},
        "last_payment_error": {"code": "card_declined", "decline_code": "do_not_honor"},
    }
    raw["data"]["object"]["payments"] = {"data": [{"payment": {"payment_intent": intent}}]}
    event = parse_stripe(raw)[0]
    assert isinstance(event, PaymentFailed)
    assert event.decline.decline_code == "do_not_honor"
    assert event.attempt_key == "inv_1:att_4"


def test_invoice_paid() -> None:
    event = only("stripe_invoice_paid.json")
    assert isinstance(event, InvoicePaid)
    assert (event.invoice_ref, event.subscription_ref) == ("in_1RiXpaid01", "sub_1RaQ8pLkdfk3pWq8")
    assert (event.amount, event.currency, event.attempt_key) == (1900, "EUR", None)


def test_invoice_paid_carries_our_key_from_metadata() -> None:
    raw = payload("stripe_invoice_paid.json")
    raw["data"]["object"]["metadata"] = {"idempotency_key": "inv_5:att_1"}
    event = parse_stripe(raw)[0]
    assert isinstance(event, InvoicePaid)
    assert event.attempt_key == "inv_5:att_1"


def test_action_required_defaults_to_authentication_required() -> None:
    event = only("stripe_invoice_payment_action_required.json")
    assert isinstance(event, ActionRequired)
    assert event.decline == Decline(decline_code="authentication_required")
    assert (event.invoice_ref, event.amount, event.currency) == ("in_1PzAction01", 1900, "EUR")


def test_charge_failed_reads_outcome_card_and_our_key() -> None:
    event = only("stripe_charge_failed.json")
    assert isinstance(event, PaymentFailed)
    assert event.attempt_key == "inv_9f2c:att_3"
    assert event.decline == Decline("do_not_honor", "05", "do_not_try_again", "03")
    assert event.card == CardInfo("pm_1RiXmc01", "mastercard", "4444", 11, 2026)
    assert (event.amount, event.currency, event.invoice_ref) == (4900, "USD", None)


def test_payment_intent_failed_reads_last_payment_error() -> None:
    event = only("stripe_payment_intent_payment_failed.json")
    assert isinstance(event, PaymentFailed)
    assert event.attempt_key == "inv_77:att_2"
    assert event.decline == Decline(decline_code="expired_card", network_code="54")
    assert event.card is not None
    assert event.card.last4 == "9995"


def test_subscription_updated_new_shape_period_end_on_items() -> None:
    event = only("stripe_customer_subscription_updated.json")
    assert isinstance(event, SubscriptionChanged)
    assert (event.status, event.cancelled) == ("past_due", False)
    assert (event.plan, event.amount, event.currency) == ("price_pro_monthly", 1900, "EUR")
    assert event.current_period_end == datetime(2025, 8, 8, 10, 0, tzinfo=UTC)


def test_subscription_deleted_is_cancelled() -> None:
    event = only("stripe_customer_subscription_deleted.json")
    assert isinstance(event, SubscriptionChanged)
    assert (event.status, event.cancelled, event.plan, event.amount) == (
        "canceled",
        True,
        "plan_basic",
        500,
    )
    assert event.current_period_end == datetime(2024, 10, 1, tzinfo=UTC)


def test_subscription_with_a_metered_item_has_no_amount() -> None:
    raw = payload("stripe_customer_subscription_updated.json")
    raw["data"]["object"]["items"]["data"][0]["price"]["unit_amount"] = None
    event = parse_stripe(raw)[0]
    assert isinstance(event, SubscriptionChanged)
    assert event.amount is None


def test_card_automatically_updated() -> None:
    event = only("stripe_payment_method_automatically_updated.json")
    assert isinstance(event, CardAutoUpdated)
    assert (event.payment_method_ref, event.customer_ref) == (
        "pm_1RiXb2Lkdfk3pWq8",
        "cus_SdK2qZ3x8Yf1",
    )
    assert (event.last4, event.exp_month, event.exp_year, event.network) == (
        "9995",
        9,
        2030,
        "visa",
    )


def test_card_attached_and_detached() -> None:
    attached = only("stripe_payment_method_attached.json")
    assert isinstance(attached, CardAttached)
    assert attached.card == CardInfo("pm_1RiXb2Lkdfk3pWq8", "visa", "9995", 8, 2027)
    detached = only("stripe_payment_method_detached.json")
    assert isinstance(detached, CardDetached)
    # The object no longer names the customer; previous_attributes does.
    assert detached.customer_ref == "cus_SdK2qZ3x8Yf1"


def test_non_card_payment_method_attached_is_ignored() -> None:
    raw = payload("stripe_payment_method_attached.json")
    del raw["data"]["object"]["card"]
    raw["data"]["object"]["type"] = "sepa_debit"
    assert parse_stripe(raw)[0] == Ignored(
        provider="stripe",
        event_id="evt_1RiXpmatt01",
        occurred_at=datetime(2025, 7, 8, 10, 0, tzinfo=UTC),
        type="payment_method.attached",
    )


def test_unknown_type_is_ignored() -> None:
    raw = payload("stripe_customer_created.json")
    raw["type"] = "customer.discount.created"
    [event] = parse_stripe(raw)
    assert isinstance(event, Ignored)
    assert event.type == "customer.discount.created"


def test_customer_created_carries_the_customer_as_the_book_holds_it() -> None:
    raw = payload("stripe_customer_created.json")
    raw["data"]["object"].update(
        name="Ana Jensen",
        preferred_locales=["da-DK", "en"],
        address={"country": "DK"},
        invoice_settings={"default_payment_method": "pm_1Abc"},
    )
    [event] = parse_stripe(raw)
    assert isinstance(event, CustomerChanged)
    rec = event.customer
    assert (rec.ref, rec.email, rec.name) == ("cus_New01", "new@example.com", "Ana Jensen")
    assert rec.preferred_locales == ("da-DK", "en")
    assert rec.timezone == "Europe/Copenhagen"
    assert rec.default_card_ref == "pm_1Abc"


def test_envelope() -> None:
    assert stripe_envelope(payload("stripe_charge_failed.json")) == (
        "evt_3RiXcharge01",
        "charge.failed",
    )
    with pytest.raises(MalformedEvent, match="id: longer than 128"):
        stripe_envelope({"id": "e" * 129, "type": "x"})


def mutate(name: str, path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    raw: dict[str, Any] = copy.deepcopy(payload(name))
    target: Any = raw
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    ("name", "path", "value", "reason"),
    [
        ("stripe_invoice_paid.json", ("id",), KeyError, "id: missing"),
        ("stripe_invoice_paid.json", ("type",), 42, "type: expected a string"),
        ("stripe_invoice_paid.json", ("created",), "yesterday", "created: expected an integer"),
        ("stripe_invoice_paid.json", ("data",), [], "data: expected an object"),
        ("stripe_invoice_paid.json", ("data", "object"), KeyError, "data.object: missing"),
        (
            "stripe_invoice_paid.json",
            ("data", "object", "amount_paid"),
            True,
            "data.object.amount_paid: expected an integer",
        ),
        (
            "stripe_invoice_paid.json",
            ("data", "object", "amount_paid"),
            -1,
            "data.object.amount_paid: negative amount",
        ),
        (
            "stripe_invoice_paid.json",
            ("data", "object", "currency"),
            "euro",
            "data.object.currency: not an ISO 4217 code",
        ),
        (
            "stripe_invoice_paid.json",
            ("data", "object", "parent"),
            "sub",
            "data.object.parent: expected an object",
        ),
        (
            "stripe_invoice_payment_failed_expanded.json",
            ("data", "object", "payment_intent", "last_payment_error", "decline_code"),
            {"x": 1},
            "data.object.payment_intent.last_payment_error.decline_code: expected a string",
        ),
        (
            "stripe_customer_subscription_updated.json",
            ("data", "object", "items", "data", 0),
            "si",
            "data.object.items.data[0]: expected an object",
        ),
        (
            "stripe_payment_method_automatically_updated.json",
            ("data", "object", "card"),
            KeyError,
            "data.object.card: missing",
        ),
        (
            "stripe_charge_failed.json",
            ("data", "object", "customer"),
            {"email": "x"},
            "data.object.customer.id: missing",
        ),
    ],
)
def test_malformed_payload_names_the_field(
    name: str, path: tuple[Any, ...], value: Any, reason: str
) -> None:
    with pytest.raises(MalformedEvent) as info:
        parse_stripe(mutate(name, path, value))
    assert info.value.reason == reason
    assert isinstance(info.value, PermanentError)


@pytest.mark.parametrize("raw", [None, [], "evt", 3, {"id": "evt_1"}])
def test_not_an_event_at_all(raw: Any) -> None:
    with pytest.raises(MalformedEvent):
        parse_stripe(raw)
