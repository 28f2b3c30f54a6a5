"""On Stripe: a failed Stripe Billing invoice paid from the card page with a card that needs
3-D Secure, through the real web service, a real browser and the Stripe double over HTTP
(serving a stand-in for Stripe.js). A first try fails the bank's challenge and changes and
charges nothing; the second passes it, and the Stripe invoice itself is paid."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import select

from dunning.store.tables import invoices, metadata, payment_attempts, payment_methods
from dunning.webhooks.signatures import sign_stripe
from tests.e2e.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NOON,
    STRIPE_SECRET,
    Mailbox,
    Service,
    e2e_settings,
    need_chromium,
    running,
)
from tests.e2e.test_card_update_flow import PHONE, kinds_by_message_id, status_of, text_of
from tests.services import free_port
from tests.stripe_double import PUBLISHABLE_KEY, StripeDouble, serve
from tests.unit.web.builders import stripe_invoice_event

pytestmark = pytest.mark.e2e

SCA_NUMBER = "4000 0025 0000 3155"  # Stripe's test card: 3-D Secure to set up, then no more


@pytest.fixture
def double() -> Iterator[tuple[StripeDouble, str]]:
    double = StripeDouble()
    with serve(double) as base_url:
        yield double, base_url


@pytest.fixture
def stripe_service(
    tmp_path: Path, mailbox: Mailbox, double: tuple[StripeDouble, str]
) -> Iterator[Service]:
    stripe, base_url = double
    port = free_port()
    settings = e2e_settings(
        tmp_path,
        mailbox,
        port,
        gateway="stripe",
        stripe={
            "webhook_secrets": [STRIPE_SECRET],
            "api_key": stripe.api_key,
            "api_base": base_url,
            "publishable_key": PUBLISHABLE_KEY,
            "js_url": f"{base_url}/js/v3/",
        },
    )
    with running(settings, port) as service:
        yield service


def enter_card(page: Page) -> None:
    page.get_by_label("Card number").fill(SCA_NUMBER)
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("Security code").fill("123")
    page.get_by_label("Remove my previous card").check()
    page.get_by_role("button", name="Pay €19.00").click()


def test_a_failed_stripe_invoice_is_paid_with_a_card_that_needs_3ds(
    stripe_service: Service, mailbox: Mailbox, double: tuple[StripeDouble, str]
) -> None:
    need_chromium()
    stripe, _ = double
    service = stripe_service
    # Given Stripe Billing's renewal invoice failed, and Stripe's webhook says so
    stripe.add_invoice("in_e2e_s", customer="cus_e2e_s", amount=1900, currency="eur")
    payload = stripe_invoice_event(
        event_id="evt_e2e_s",
        invoice="in_e2e_s",
        subscription="sub_e2e_s",
        customer="cus_e2e_s",
        email="jenny@example.com",
        amount=1900,
        created=NOON,
    )
    body = json.dumps(payload).encode()
    response = httpx.post(
        f"{service.base_url}/webhooks/stripe",
        content=body,
        headers={
            "Stripe-Signature": sign_stripe(body, STRIPE_SECRET, int(NOON.timestamp())),
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200
    [failed] = mailbox.wait_for(1)
    links = re.findall(rf"{re.escape(service.base_url)}/update/[A-Za-z0-9_.-]+", text_of(failed))
    assert links, "no card-update link in the email"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE)
            # script errors and anything the page's CSP refused (Stripe.js, its API calls)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "console",
                lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
            )
            opened = page.goto(links[0])
            assert opened is not None
            assert opened.status == 200

            # When the customer enters a card that needs 3-D Secure and fails the challenge
            enter_card(page)
            page.get_by_role("button", name="Fail authentication").click()
            page.wait_for_url("**/authenticate")

            # Then the page says the bank did not confirm the card, and nothing happened
            assert (
                page.get_by_role("alert")
                .filter(has_text="not confirmed with your bank")
                .is_visible()
            )
            assert stripe.posts("/v1/invoices/in_e2e_s/pay") == []
            assert status_of(service, invoices, "in_e2e_s") == "open"
            assert stripe.invoices["in_e2e_s"]["status"] == "open"

            # When they try again and complete the challenge
            enter_card(page)
            page.get_by_role("button", name="Complete authentication").click()
            page.wait_for_url("**/done?outcome=paid&*")

            # Then the success page shows the card as Stripe holds it
            assert page.get_by_role("heading", name="Thank you").is_visible()
            assert page.get_by_text("Visa ending in 3155, expires 12/2034").is_visible()
            assert errors == []
        finally:
            browser.close()

    # and the Stripe invoice itself was paid, once, under our attempt's idempotency key
    [paid] = stripe.posts("/v1/invoices/in_e2e_s/pay")
    with service.c.engine.connect() as conn:
        keys = conn.execute(select(payment_attempts.c.idempotency_key)).scalars().all()
        cards = conn.execute(select(payment_methods).where(payment_methods.c.last4 == "3155"))
        [card] = cards.mappings().all()
    assert paid.headers["idempotency-key"] in keys
    assert paid.form["payment_method"] == card["token"]
    assert stripe.attached[card["token"]] == "cus_e2e_s"
    assert stripe.posts("/v1/payment_intents") == []
    assert stripe.invoices["in_e2e_s"]["status"] == "paid"
    assert status_of(service, invoices, "in_e2e_s") == "paid"
    # two SetupIntents: the failed challenge's and the passed one's
    assert [s["status"] for s in stripe.setups.values()] == [
        "requires_payment_method",
        "succeeded",
    ]
    # and the card number reached neither the web service's database nor its form posts
    with service.c.engine.connect() as conn:
        dump = repr([list(conn.execute(select(t))) for t in metadata.sorted_tables])
    assert "4000002500003155" not in dump.replace(" ", "")
    # one email, not two: the receipt confirms the new card too (no separate card_updated)
    delivered = mailbox.wait_for(2)
    kinds = kinds_by_message_id(service)
    assert sorted(kinds[m["Message-ID"]] for m in delivered) == [
        "payment_failed",
        "payment_recovered",
    ]
