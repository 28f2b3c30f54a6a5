"""Stripe mode: Stripe.js collects the card; only a ``payment_method`` id reaches the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from dunning.gateways.base import ChargeRequest, ChargeResult, VerifyResult
from dunning.store.tables import customers, invoices, payment_methods
from tests.unit.web.conftest import Web, make_web, web_settings


class FakeStripe:
    """Stripe as the page sees it: every payment method verifies and every charge succeeds."""

    name = "stripe"

    def __init__(self) -> None:
        self.verified: list[tuple[str, str]] = []
        self.charged: list[ChargeRequest] = []

    def verify(self, token: str, *, customer_id: str, currency: str) -> VerifyResult:
        self.verified.append((token, customer_id))
        return VerifyResult(ok=True)

    def charge(self, request: ChargeRequest) -> ChargeResult:
        self.charged.append(request)
        return ChargeResult("succeeded", charge_id="pi_1")

    def lookup(
        self, idempotency_key: str, *, customer_id: str, invoice_ref: str | None = None
    ) -> ChargeResult | None:
        return None

    def delete_token(self, token: str) -> None:
        return None


@pytest.fixture
def stripe_web(tmp_path: Path) -> Iterator[tuple[Web, FakeStripe]]:
    fake = FakeStripe()
    settings = web_settings(
        tmp_path,
        gateway="stripe",
        stripe={"publishable_key": "pk_test_123", "webhook_secrets": ["whsec_x"]},
    )
    for web in make_web(settings, gateway=fake):
        yield web, fake


def test_stripe_mode_renders_the_stripe_element_and_no_card_fields(
    stripe_web: tuple[Web, FakeStripe],
) -> None:
    web, _ = stripe_web
    web.add_customer()

    response = web.client.get(web.link())

    assert response.status_code == 200
    assert 'id="card-element"' in response.text
    assert 'data-key="pk_test_123"' in response.text
    assert '<script src="https://js.stripe.com/v3/"></script>' in response.text
    assert 'name="card_number"' not in response.text
    policy = response.headers["content-security-policy"]
    assert "https://js.stripe.com" in policy
    assert "'nonce-" in policy


def test_stripe_mode_accepts_a_payment_method_and_pays_the_invoice(
    stripe_web: tuple[Web, FakeStripe],
) -> None:
    web, fake = stripe_web
    web.add_customer()
    with web.c.engine.begin() as conn:
        conn.execute(update(customers).values(stripe_customer_id="cus_S1"))
    web.fail_invoice()
    path = web.link()
    fields = {
        "payment_method": "pm_1NewCard",
        "card_brand": "mastercard",
        "card_last4": "4444",
        "exp_month": "11",
        "exp_year": "2031",
    }

    missing = web.client.post(path, data={"csrf": web.open_form(path)})
    response = web.client.post(
        path, data={"csrf": web.open_form(path), **fields}, follow_redirects=False
    )

    assert missing.status_code == 422
    assert "Enter your card in the box above" in missing.text
    assert response.status_code == 303
    assert fake.verified == [("pm_1NewCard", "cus_S1")]
    assert [(c.token, c.customer_id) for c in fake.charged] == [("pm_1NewCard", "cus_S1")]
    assert web.row(invoices, "in_1")["status"] == "paid"
    [card] = web.rows(payment_methods, payment_methods.c.token == "pm_1NewCard")
    assert (card["gateway"], card["network"], card["last4"]) == ("stripe", "mastercard", "4444")
