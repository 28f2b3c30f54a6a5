"""Stripe's customer and subscription webhooks keep the book current: signed, posted to the real
web app, stored and applied by a worker, on SQLite and PostgreSQL.

A new customer takes its locale from ``preferred_locales`` and its time zone from the address
country or ``metadata.timezone``; a subscription comes in with its real plan, amount and
interval, follows a price change and is cancelled when Stripe deletes it; a subscription whose
customer has not arrived yet waits for it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from dunning.services.events import process_event
from dunning.store.tables import customers, payment_methods, subscriptions, webhook_events
from tests.unit.web.builders import stripe_invoice_event
from tests.unit.web.conftest import Web, make_web, web_settings

EVENT_IDS = itertools.count(1)


@pytest.fixture
def web(tmp_path: Path, db_url: str) -> Iterator[Web]:
    yield from make_web(web_settings(tmp_path, database_url=db_url))


def event(
    web: Web, kind: str, obj: dict[str, Any], ago: timedelta = timedelta(0)
) -> dict[str, Any]:
    return {"id": f"evt_{kind}_{next(EVENT_IDS)}", "object": "event", "type": kind,
            "created": int((web.now - ago).timestamp()), "data": {"object": obj},
            "api_version": "2025-03-31.basil"}  # fmt: skip


def customer(ref: str = "cus_W1", **changes: Any) -> dict[str, Any]:
    obj = {"id": ref, "object": "customer", "email": "ana@example.com", "name": "Ana Berg",
           "preferred_locales": ["it", "da-DK"], "address": {"country": "DK"}, "metadata": {},
           "invoice_settings": {"default_payment_method": None}}  # fmt: skip
    obj.update(changes)
    return obj


def subscription(ref: str = "sub_W1", *, customer: str = "cus_W1", price: str = "price_team_year",
                 unit: int = 24000, quantity: int = 3, interval: str = "year",
                 status: str = "active") -> dict[str, Any]:  # fmt: skip
    item = {"id": f"si_{ref}", "object": "subscription_item", "quantity": quantity,
            "current_period_end": 1_804_000_000,
            "price": {"id": price, "object": "price", "currency": "dkk", "unit_amount": unit,
                      "recurring": {"interval": interval, "interval_count": 1}}}  # fmt: skip
    return {"id": ref, "object": "subscription", "customer": customer, "status": status,
            "default_payment_method": None, "currency": "dkk",
            "items": {"object": "list", "data": [item], "has_more": False}}  # fmt: skip


def post(web: Web, payload: dict[str, Any]) -> None:
    assert web.post_stripe(payload).status_code == 200
    web.drain()


def stored_status(web: Web, event_id: str) -> str:
    with web.c.engine.connect() as conn:
        return str(
            conn.scalar(
                select(webhook_events.c.status).where(webhook_events.c.event_id == event_id)
            )
        )


def test_customer_created_then_updated(web: Web) -> None:
    post(web, event(web, "customer.created", customer()))

    row = web.row(customers, "cus_W1")
    assert (row["email"], row["name"], row["stripe_customer_id"]) == (
        "ana@example.com", "Ana Berg", "cus_W1")  # fmt: skip
    assert row["locale"] == "da-DK"  # the first preferred locale with templates, not "it"
    assert row["timezone"] == "Europe/Copenhagen"  # DK keeps one local time

    changed = customer(email="ana.berg@example.com", preferred_locales=["en-GB"],
                       address={"country": "US"},
                       metadata={"timezone": "America/Chicago"})  # fmt: skip
    post(web, event(web, "customer.updated", changed))

    row = web.row(customers, "cus_W1")
    assert (row["email"], row["locale"], row["timezone"]) == (
        "ana.berg@example.com", "en-GB", "America/Chicago")  # fmt: skip
    assert web.count(customers) == 1


def test_a_customer_we_map_is_updated_under_our_id(web: Web) -> None:
    with web.c.engine.begin() as conn:
        conn.execute(
            insert(customers).values(
                id="42", email="old@example.com", billing_emails=[], stripe_customer_id="cus_W1",
                created_at=web.now, updated_at=web.now,
            )
        )  # fmt: skip
        conn.execute(
            insert(payment_methods).values(
                id="pm_W2", customer_id="42", gateway="stripe", token="pm_W2", last4="4444",
                exp_month=1, exp_year=2031, created_at=web.now, updated_at=web.now,
            )
        )  # fmt: skip

    changed = customer(invoice_settings={"default_payment_method": "pm_W2"})
    post(web, event(web, "customer.updated", changed))

    assert web.count(customers) == 1
    row = web.row(customers, "42")
    assert (row["email"], row["locale"], row["card_generation"]) == ("ana@example.com", "da-DK", 1)
    assert web.row(payment_methods, "pm_W2")["is_default"] is True


def test_subscription_created_updated_and_deleted_with_its_real_plan(web: Web) -> None:
    post(web, event(web, "customer.created", customer()))
    post(web, event(web, "customer.subscription.created", subscription()))

    sub = web.row(subscriptions, "sub_W1")
    assert (sub["customer_id"], sub["plan"], sub["interval"]) == (
        "cus_W1", "price_team_year", "year")  # fmt: skip
    assert (sub["amount"], sub["currency"], sub["status"]) == (3 * 24000, "DKK", "active")
    assert sub["current_period_end"] is not None

    monthly = subscription(price="price_team_month", unit=2500, quantity=4, interval="month")
    post(web, event(web, "customer.subscription.updated", monthly))

    sub = web.row(subscriptions, "sub_W1")
    assert (sub["plan"], sub["interval"], sub["amount"]) == ("price_team_month", "month", 10000)

    post(web, event(web, "customer.subscription.deleted", subscription(status="canceled")))
    assert web.row(subscriptions, "sub_W1")["status"] == "cancelled"


def test_a_subscription_before_its_customer_waits_for_it(web: Web) -> None:
    early = event(web, "customer.subscription.created", subscription())
    post(web, early)
    assert stored_status(web, early["id"]) == "received"  # deferred, offered again later
    assert web.count(subscriptions) == 0

    post(web, event(web, "customer.created", customer()))
    with web.c.engine.connect() as conn:
        row_id = conn.scalar(
            select(webhook_events.c.id).where(webhook_events.c.event_id == early["id"])
        )
    assert process_event(web.c, row_id, web.now + timedelta(minutes=5)) == "processed"
    assert web.row(subscriptions, "sub_W1")["plan"] == "price_team_year"


def test_a_subscription_whose_customer_never_comes_fails_after_an_hour(web: Web) -> None:
    late = event(web, "customer.subscription.created", subscription(customer="cus_never"),
                 ago=timedelta(hours=2))  # fmt: skip
    post(web, late)
    assert stored_status(web, late["id"]) == "failed"
    assert web.count(subscriptions) == 0


def failed_invoice(web: Web, *, customer: str = "cus_W9", line: dict[str, Any]) -> dict[str, Any]:
    payload = stripe_invoice_event(invoice="in_W9", subscription="sub_W9", customer=customer,
                                   created=web.now, event_id="evt_in_W9")  # fmt: skip
    payload["data"]["object"].update(
        customer_address={"country": "DK"}, lines={"object": "list", "data": [line]}
    )
    return payload


def test_a_failed_invoice_of_an_unknown_subscription_brings_its_real_plan(web: Web) -> None:
    # Since API 2025-03-31 a line names its price by id; the period says how long it bills.
    line = {"id": "il_1", "object": "line_item", "amount": 1900, "currency": "eur",
            "period": {"start": 1_767_225_600, "end": 1_767_225_600 + 365 * 86400},
            "pricing": {"type": "price_details",
                        "price_details": {"price": "price_basic_year"}}}  # fmt: skip
    post(web, failed_invoice(web, line=line))

    sub = web.row(subscriptions, "sub_W9")
    assert (sub["plan"], sub["interval"]) == ("price_basic_year", "year")
    assert web.row(customers, "cus_W9")["timezone"] == "Europe/Copenhagen"


def test_a_failed_invoice_of_a_customer_we_map_is_filed_under_our_id(web: Web) -> None:
    with web.c.engine.begin() as conn:
        conn.execute(
            insert(customers).values(
                id="42", email="old@example.com", billing_emails=[], stripe_customer_id="cus_W9",
                created_at=web.now, updated_at=web.now,
            )
        )  # fmt: skip
    line = {"id": "il_1", "object": "line_item", "amount": 1900, "currency": "eur",
            "price": {"id": "price_basic_month", "object": "price",
                      "recurring": {"interval": "month", "interval_count": 1}}}  # fmt: skip
    post(web, failed_invoice(web, line=line))

    assert web.count(customers) == 1
    sub = web.row(subscriptions, "sub_W9")
    assert (sub["customer_id"], sub["plan"], sub["interval"]) == (
        "42",
        "price_basic_month",
        "month",
    )
