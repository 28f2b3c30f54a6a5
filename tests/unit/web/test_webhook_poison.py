"""Signed deliveries whose fields the book cannot store are refused with a 400 naming the field.

Each of these bodies is well signed and well formed JSON; before the receiver checked what the
book can hold, each was accepted (200), stored, and then failed in the worker on every try.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from dunning.store.tables import webhook_events
from tests.unit.web.builders import quickpay_recurring, stripe_invoice_event
from tests.unit.web.conftest import Web

BEYOND_BIGINT = 2**63
Edit = Callable[[dict[str, Any]], None]


def _intent_card(event: dict[str, Any]) -> dict[str, Any]:
    error = event["data"]["object"]["payment_intent"]["last_payment_error"]
    card: dict[str, Any] = error["payment_method"]["card"]
    return card


def _set(path: tuple[Any, ...], value: Any) -> Edit:
    def edit(body: dict[str, Any]) -> None:
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _stripe_card(key: str, value: Any) -> Edit:
    return lambda event: _intent_card(event).__setitem__(key, value)


INVOICE = ("data", "object")
STRIPE_POISON = {
    "amount beyond bigint": (_set((*INVOICE, "amount_due"), BEYOND_BIGINT), "amount_due"),
    "last4 of five digits": (_stripe_card("last4", "03411"), "card.last4: expected 4 digits"),
    "last4 not digits": (_stripe_card("last4", "ab12"), "card.last4: expected 4 digits"),
    "month 13": (_stripe_card("exp_month", 13), "card.exp_month: 13 is not a month"),
    "year 10000": (_stripe_card("exp_year", 10000), "card.exp_year: 10000 is outside"),
    "invoice id of 65": (_set((*INVOICE, "id"), "in_" + "x" * 62), "invoice_ref: longer than 64"),
    "customer id of 65": (_set((*INVOICE, "customer"), "c" * 65), "customer_ref: longer than 64"),
    "name of 201": (
        _set((*INVOICE, "customer_name"), "n" * 201),
        "customer.name: longer than 200",
    ),
    "network code of 9": (
        _set((*INVOICE, "payment_intent", "last_payment_error", "network_decline_code"), "1" * 9),
        "decline.network_code: longer than 8",
    ),
}


@pytest.mark.parametrize("case", sorted(STRIPE_POISON))
def test_a_stripe_field_the_book_cannot_store_is_refused_with_400_and_logged(
    web: Web, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    edit, reason = STRIPE_POISON[case]
    event = stripe_invoice_event(created=web.now)
    edit(event)
    before = web.snapshot()

    with caplog.at_level(logging.WARNING, logger="dunning.web.webhooks"):
        response = web.post_stripe(event)

    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    assert any(reason in r.getMessage() for r in caplog.records), caplog.text
    assert web.snapshot() == before
    assert web.count(webhook_events) == 0


def _operation(body: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = body["operations"][0]
    return op


QUICKPAY_POISON = {
    "amount beyond bigint": (
        lambda b: _operation(b).__setitem__("amount", BEYOND_BIGINT),
        "operations[0].amount: larger than",
    ),
    "last4 of five digits": (
        _set(("metadata", "last4"), "00081"),
        "card.last4: expected 4 digits",
    ),
    "year 3000": (_set(("metadata", "exp_year"), 3000), "card.exp_year: 3000 is outside"),
    "month 0": (_set(("metadata", "exp_month"), 0), "card.exp_month: 0 is not a month"),
    "order id of 65": (_set(("order_id",), "o" * 65), "invoice_ref: longer than 64"),
    "acquirer code of 9": (
        lambda b: _operation(b).__setitem__("aq_status_code", "123456789"),
        "decline.network_code: longer than 8",
    ),
}


@pytest.mark.parametrize("case", sorted(QUICKPAY_POISON))
def test_a_quickpay_field_the_book_cannot_store_is_refused_with_400_and_logged(
    web: Web, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    edit, reason = QUICKPAY_POISON[case]
    body = quickpay_recurring()
    edit(body)
    before = web.snapshot()

    with caplog.at_level(logging.WARNING, logger="dunning.web.webhooks"):
        response = web.post_quickpay(body)

    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    assert any(reason in r.getMessage() for r in caplog.records), caplog.text
    assert web.snapshot() == before


def test_the_same_bodies_with_storable_fields_are_accepted(web: Web) -> None:
    """The refusals above are about the field, not the body: unchanged, both are accepted."""
    assert web.post_stripe(stripe_invoice_event(created=web.now)).json() == {"status": "accepted"}
    assert web.post_quickpay(quickpay_recurring()).json() == {"status": "accepted"}
