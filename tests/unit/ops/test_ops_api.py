"""``/ops/api``: a customer's and an invoice's dunning state as JSON, behind the ops login."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from dunning.store.tables import invoices, payment_methods
from dunning.web.app import create_app
from tests.unit.ops.conftest import OPS_PASSWORD, Book, TestClient
from tests.unit.ops.test_web_ops import AUTH, basic


@pytest.fixture
def client(any_book: Book) -> Iterator[TestClient]:
    with TestClient(create_app(any_book.c), base_url="http://testserver") as c:
        yield c


@pytest.mark.parametrize("path", ["/ops/api/customers/a", "/ops/api/invoices/in_a"])
def test_the_api_needs_the_ops_login(any_book: Book, client: TestClient, path: str) -> None:
    any_book.add_customer("a")
    any_book.fail("a")
    for headers in ({}, basic("ops", "wrong"), basic("other", OPS_PASSWORD)):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert "in_a" not in response.text


def test_invoice_state_of_a_failed_renewal(any_book: Book, client: TestClient) -> None:
    any_book.add_customer("a", amount=2900, currency="EUR")
    any_book.fail("a")
    any_book.advance(timedelta(days=3, hours=1))
    response = client.get("/ops/api/invoices/in_a", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "open"
    assert body["subscription_status"] == "past_due"
    assert body["past_due"] is True
    assert (body["amount_owed"], body["currency"], body["amount_owed_text"]) == (
        2900,
        "EUR",
        "€29.00",
    )
    assert body["days_past_due"] == 3
    assert body["next_retry_at"] is not None
    assert body["next_retry_at"] == any_book.invoice_row("in_a")["next_attempt_at"].isoformat()
    assert body["suspends_at"] > any_book.now.isoformat()
    assert body["update_card_needed"] is False
    assert body["card"] == {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}
    assert "sbx_ok_" not in response.text  # never the card's token


def test_an_expired_card_needs_updating(any_book: Book, client: TestClient) -> None:
    any_book.add_customer("a")
    any_book.fail("a")
    any_book.set(payment_methods, "pm_a", exp_year=2026, exp_month=2)  # before March 2026
    assert client.get("/ops/api/invoices/in_a", headers=AUTH).json()["update_card_needed"]
    customer = client.get("/ops/api/customers/a", headers=AUTH).json()
    assert customer["update_card_needed"] is True


def test_a_card_decline_that_needs_a_new_card(any_book: Book, client: TestClient) -> None:
    any_book.add_customer("a")
    any_book.fail("a")
    any_book.set(invoices, "in_a", last_decline_class="needs_new_card")
    assert client.get("/ops/api/invoices/in_a", headers=AUTH).json()["update_card_needed"]


def test_customer_state_sums_what_is_owed(any_book: Book, client: TestClient) -> None:
    any_book.add_customer("a", amount=1000)
    any_book.fail("a", "in_a1")
    any_book.advance(timedelta(days=2))
    any_book.fail("a", "in_a2")
    any_book.add_customer("b")
    body = client.get("/ops/api/customers/a", headers=AUTH).json()
    assert body["customer_id"] == "a"
    assert body["past_due"] is True
    assert body["amounts_owed"] == [{"currency": "EUR", "amount": 2000, "text": "€20.00"}]
    assert body["days_past_due"] == 2
    assert [i["invoice_id"] for i in body["invoices"]] == ["in_a1", "in_a2"]
    assert body["subscriptions"] == [
        {"subscription_id": "sub_a", "plan": "default", "status": "past_due"}
    ]
    quiet = client.get("/ops/api/customers/b", headers=AUTH).json()
    assert quiet["past_due"] is False
    assert quiet["amounts_owed"] == []
    assert quiet["invoices"] == []
    assert quiet["next_retry_at"] is None


def test_a_paid_invoice_owes_nothing(any_book: Book, client: TestClient) -> None:
    any_book.add_customer("a")
    any_book.fail("a")
    any_book.set(invoices, "in_a", status="paid", paid_at=any_book.now, next_attempt_at=None)
    body = client.get("/ops/api/invoices/in_a", headers=AUTH).json()
    assert (body["past_due"], body["amount_owed"], body["days_past_due"]) == (False, 0, 0)
    assert body["next_retry_at"] is None
    assert body["update_card_needed"] is False
    assert client.get("/ops/api/customers/a", headers=AUTH).json()["past_due"] is False


def test_unknown_ids_are_a_404_naming_them(any_book: Book, client: TestClient) -> None:
    response = client.get("/ops/api/invoices/in_nope", headers=AUTH)
    assert response.status_code == 404
    assert "in_nope" in response.json()["error"]
    response = client.get("/ops/api/customers/cus_nope", headers=AUTH)
    assert response.status_code == 404
    assert "cus_nope" in response.json()["error"]
