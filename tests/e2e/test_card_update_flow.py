"""From a failed-payment webhook to a paid invoice, through a real inbox and a real browser."""

from __future__ import annotations

import json
import re
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from dunning.store.tables import invoices, notifications, payment_methods, subscriptions
from dunning.webhooks.signatures import sign_stripe
from tests.e2e.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NOON,
    STRIPE_SECRET,
    Mailbox,
    Service,
    need_chromium,
)
from tests.unit.web.builders import stripe_invoice_event

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def kinds_by_message_id(service: Service) -> dict[str, str]:
    with service.c.engine.connect() as conn:
        rows = conn.execute(select(notifications.c.message_id, notifications.c.kind)).all()
    return {message_id: kind for message_id, kind in rows}


def status_of(service: Service, table: object, key: str) -> str:
    with service.c.engine.connect() as conn:
        return str(conn.execute(select(table.c.status).where(table.c.id == key)).scalar_one())  # type: ignore[attr-defined]


def test_customer_updates_the_card_from_the_email_link(
    service: Service, mailbox: Mailbox, tmp_path: Path
) -> None:
    need_chromium()
    # Given a signed Stripe webhook saying the renewal failed
    payload = stripe_invoice_event(
        event_id="evt_e2e_1",
        invoice="in_e2e_1",
        subscription="sub_e2e_1",
        customer="cus_e2e_1",
        email="jenny@example.com",
        amount=1900,
        created=NOON,
    )
    body = json.dumps(payload).encode()
    header = sign_stripe(body, STRIPE_SECRET, int(NOON.timestamp()))
    response = httpx.post(
        f"{service.base_url}/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()) == (200, {"status": "accepted"})

    # When the "payment failed" email arrives, it carries the card-update link
    [failed] = mailbox.wait_for(1)
    assert failed["To"] == "jenny@example.com"
    assert kinds_by_message_id(service)[failed["Message-ID"]] == "payment_failed"
    links = re.findall(rf"{re.escape(service.base_url)}/update/[A-Za-z0-9_.-]+", text_of(failed))
    assert links, "no card-update link in the email"
    link = links[0]

    # and the customer opens it on a phone, fills the form by its labels and submits
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE)
            opened = page.goto(link)
            assert opened is not None
            assert opened.status == 200
            assert page.get_by_text("€19.00").first.is_visible()
            screenshot = tmp_path / "card-update-phone.png"
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.stat().st_size > 0
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1] == PHONE["width"], f"horizontal scroll: {widths}"

            page.get_by_label("Card number").fill("4242 4242 4242 4242")
            page.get_by_label("Expiry month").fill("12")
            page.get_by_label("Expiry year").fill("2030")
            page.get_by_label("CVC").fill("123")
            page.get_by_label("Remove my previous card").check()
            page.get_by_role("button", name="Pay €19.00").click()
            page.wait_for_url("**/done?outcome=paid&*")

            # Then the success page shows, and the link is spent
            assert page.get_by_role("heading", name="Thank you").is_visible()
            assert page.get_by_text("Visa ending in 4242, expires 12/2030").is_visible()
            again = page.goto(link)
            assert again is not None
            assert again.status == 410
            assert page.get_by_role("heading", name="This link can no longer be used").is_visible()
        finally:
            browser.close()

    # and the invoice is paid, the subscription active, the old card removed
    assert status_of(service, invoices, "in_e2e_1") == "paid"
    assert status_of(service, subscriptions, "sub_e2e_1") == "active"
    assert status_of(service, payment_methods, "pm_old_1") == "removed"
    # and the receipt, confirming the new card, reached the SMTP server
    # one email, not two: the receipt confirms the new card too (no separate card_updated)
    delivered = mailbox.wait_for(2)
    kinds = kinds_by_message_id(service)
    assert sorted(kinds[m["Message-ID"]] for m in delivered) == [
        "payment_failed",
        "payment_recovered",
    ]
    confirmation = next(m for m in delivered if kinds[m["Message-ID"]] == "payment_recovered")
    assert "4242" in text_of(confirmation)
    assert "4242 4242" not in text_of(confirmation)
