"""Stripe mode: Stripe.js collects the card; only a ``payment_method`` id reaches the server,
which reads the card from Stripe, checks it with a SetupIntent (3-D Secure confirmed by
Stripe.js when the bank asks) and pays the Stripe invoice through the invoice."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from dunning.gateways.base import Decline
from dunning.gateways.stripe import StripeGateway
from dunning.services.events import apply
from dunning.services.failures import FailedCharge, record_failure
from dunning.store.tables import customers, invoices, payment_methods
from dunning.webhooks import events as ev
from schedules.producers import due_events
from tests.stripe_double import PUBLISHABLE_KEY, StripeDouble
from tests.unit.web.conftest import STRIPE_SECRET, Web, make_web, web_settings

SCA_CARD = "pm_card_authenticationRequiredSetupForOffSession"


@pytest.fixture
def double() -> StripeDouble:
    return StripeDouble()


@pytest.fixture
def stripe_web(tmp_path: Path, double: StripeDouble) -> Iterator[Web]:
    settings = web_settings(
        tmp_path,
        gateway="stripe",
        stripe={
            "api_key": double.api_key,
            "publishable_key": PUBLISHABLE_KEY,
            "webhook_secrets": [STRIPE_SECRET],
            "js_url": "http://127.0.0.1:9/js/v3/",
        },
    )
    gateway = StripeGateway(
        double.api_key, api_base="https://stripe.test", timeout_s=2, transport=double.transport()
    )
    try:
        yield from make_web(settings, gateway=gateway)
    finally:
        gateway.close()


def owing(web: Web, double: StripeDouble) -> str:
    """A customer Stripe knows as cus_S1 with a failed Stripe invoice; returns their link."""
    web.add_customer()
    with web.c.engine.begin() as conn:
        conn.execute(update(customers).values(stripe_customer_id="cus_S1"))
    failure = FailedCharge(
        invoice_id="in_1",
        subscription_id="sub_cus_1",
        amount=12500,
        currency="EUR",
        decline=Decline("insufficient_funds", "51"),
        occurred_at=web.now,
        stripe_invoice_id="in_S1",
    )
    assert record_failure(web.c, failure, web.now) == "recorded"
    double.add_invoice("in_S1", customer="cus_S1", amount=12500, currency="eur")
    return web.link()


def test_stripe_mode_renders_the_stripe_element_and_no_card_fields(stripe_web: Web) -> None:
    stripe_web.add_customer()

    response = stripe_web.client.get(stripe_web.link())

    assert response.status_code == 200
    assert 'id="card-element"' in response.text
    assert f'data-key="{PUBLISHABLE_KEY}"' in response.text
    assert '<script src="http://127.0.0.1:9/js/v3/"></script>' in response.text
    assert 'name="card_number"' not in response.text
    assert 'name="card_last4"' not in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'nonce-" in policy
    assert "http://127.0.0.1:9" in policy


def test_the_card_is_read_from_stripe_and_the_stripe_invoice_is_paid(
    stripe_web: Web, double: StripeDouble
) -> None:
    path = owing(stripe_web, double)
    # whatever the browser says about the card is not taken
    lies = {"card_brand": "amex", "card_last4": "1111", "exp_month": "1", "exp_year": "2040"}

    missing = stripe_web.client.post(path, data={"csrf": stripe_web.open_form(path)})
    response = stripe_web.client.post(
        path,
        data={"csrf": stripe_web.open_form(path), "payment_method": "pm_card_mastercard", **lies},
        follow_redirects=False,
    )

    assert missing.status_code == 422
    assert "Enter your card in the box above" in missing.text
    assert response.status_code == 303
    assert response.headers["location"].count("/done?outcome=paid&paid=EUR.") == 1
    [card] = stripe_web.rows(payment_methods, payment_methods.c.token == "pm_card_mastercard")
    assert (card["gateway"], card["network"], card["last4"]) == ("stripe", "mastercard", "4444")
    assert (card["exp_month"], card["exp_year"]) == (12, 2034)
    [setup] = double.posts("/v1/setup_intents")
    assert setup.form["customer"] == "cus_S1"
    assert double.posts("/v1/payment_intents") == []
    assert len(double.posts("/v1/invoices/in_S1/pay")) == 1
    assert stripe_web.row(invoices, "in_1")["status"] == "paid"


def challenge_page(web: Web, double: StripeDouble, path: str) -> tuple[str, str, str]:
    """Submit the SCA card; returns the challenge page, its client secret and sealed card."""
    response = web.client.post(path, data={"csrf": web.open_form(path), "payment_method": SCA_CARD})
    assert response.status_code == 200, response.text
    secret = re.search(r'data-client-secret="([^"]*)"', response.text)
    sealed = re.search(r'name="card" value="([^"]*)"', response.text)
    assert secret is not None
    assert sealed is not None
    return response.text, secret.group(1), sealed.group(1)


def authenticate(web: Web, path: str, sealed: str, page: str) -> object:
    csrf = re.search(r'name="csrf" value="([^"]*)"', page)
    assert csrf is not None
    return web.client.post(
        path + "/authenticate",
        data={"csrf": csrf.group(1), "card": sealed},
        follow_redirects=False,
    )


def test_a_card_that_needs_3ds_is_confirmed_then_added_and_charged(
    stripe_web: Web, double: StripeDouble
) -> None:
    path = owing(stripe_web, double)

    page, secret, sealed = challenge_page(stripe_web, double, path)
    [setup] = double.setups.values()
    assert secret == setup["client_secret"]
    assert double.posts("/v1/invoices/in_S1/pay") == []  # nothing charged before the bank says
    double._authenticate(setup, completed=True)  # the customer passes the bank's challenge
    response = authenticate(stripe_web, path, sealed, page)

    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"].count("/done?outcome=paid&paid=EUR.") == 1  # type: ignore[attr-defined]
    assert stripe_web.row(invoices, "in_1")["status"] == "paid"
    assert len(double.posts("/v1/setup_intents")) == 1  # the confirmed SetupIntent is not redone


@pytest.mark.parametrize("bank", ["fails", "never_asked"])
def test_a_failed_authentication_changes_and_charges_nothing(
    stripe_web: Web, double: StripeDouble, bank: str
) -> None:
    path = owing(stripe_web, double)
    page, _, sealed = challenge_page(stripe_web, double, path)
    [setup] = double.setups.values()
    if bank == "fails":
        double._authenticate(setup, completed=False)

    response = authenticate(stripe_web, path, sealed, page)

    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "not confirmed with your bank" in response.text  # type: ignore[attr-defined]
    assert double.posts("/v1/invoices/in_S1/pay") == []
    assert stripe_web.rows(payment_methods, payment_methods.c.token == SCA_CARD) == []
    assert stripe_web.row(invoices, "in_1")["status"] == "open"


def test_a_card_stripes_webhook_recorded_first_is_taken_over_not_doubled(
    stripe_web: Web, double: StripeDouble
) -> None:
    path = owing(stripe_web, double)
    # Stripe's payment_method.attached (sent when the SetupIntent attached the card) is
    # processed before the card page's own request finishes
    attached = ev.CardAttached(
        provider="stripe",
        event_id="evt_attached",
        occurred_at=stripe_web.now,
        payment_method_ref="pm_card_mastercard",
        customer_ref="cus_1",
        card=ev.CardInfo("pm_card_mastercard", "mastercard", "4444", 12, 2034),
    )
    assert apply(stripe_web.c, attached, stripe_web.now) == "card_added"

    response = stripe_web.client.post(
        path,
        data={
            "csrf": stripe_web.open_form(path),
            "payment_method": "pm_card_mastercard",
            "remove_old": "1",
        },
        follow_redirects=False,
    )

    assert response.headers["location"].count("/done?outcome=paid&paid=EUR.") == 1
    [card] = stripe_web.rows(payment_methods, payment_methods.c.token == "pm_card_mastercard")
    assert (card["status"], card["is_default"]) == ("active", True)
    assert "pm_card_mastercard" not in double.detached  # the new card is not removed at Stripe


def stripe_event(event_id: str, kind: str, obj: dict[str, object], web: Web) -> dict[str, object]:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(web.now.timestamp()),
        "data": {"object": obj},
    }


def attached_event(double: StripeDouble, web: Web, method: str) -> dict[str, object]:
    details = double._get_method(method).body
    return stripe_event("evt_attached", "payment_method.attached", details, web)


def test_a_customer_who_leaves_after_the_bank_confirms_still_gets_the_card_and_pays(
    stripe_web: Web, double: StripeDouble
) -> None:
    web = stripe_web
    path = owing(web, double)
    challenge_page(web, double, path)
    [setup] = double.setups.values()
    double._authenticate(setup, completed=True)  # confirmed with the bank; the tab is closed

    # Stripe's webhooks arrive, the SetupIntent's before the card's
    for payload in (
        stripe_event("evt_setup", "setup_intent.succeeded", dict(setup), web),
        attached_event(double, web, SCA_CARD),
    ):
        answer = web.post_stripe(payload)
        assert answer.status_code == 200, answer.text
        web.drain()
    deferred = web.row(invoices, "in_1")["status"]
    web.clock.advance(timedelta(seconds=web.c.settings.timing.unknown_after_s + 1))
    assert due_events(web.c, web.now) == 1  # the deferred SetupIntent event, offered again
    web.drain()

    assert deferred == "open"
    assert web.row(invoices, "in_1")["status"] == "paid"
    [card] = web.rows(payment_methods, payment_methods.c.token == SCA_CARD)
    assert (card["status"], card["is_default"], card["customer_id"]) == ("active", True, "cus_1")
    assert len(double.posts("/v1/invoices/in_S1/pay")) == 1


def test_the_webhook_after_the_page_finished_changes_nothing(
    stripe_web: Web, double: StripeDouble
) -> None:
    web = stripe_web
    path = owing(web, double)
    page, _, sealed = challenge_page(web, double, path)
    [setup] = double.setups.values()
    double._authenticate(setup, completed=True)
    assert authenticate(web, path, sealed, page).status_code == 303  # type: ignore[attr-defined]
    web.drain()  # the page's own follow-up work (its emails)
    audits_before = web.snapshot()["audit_log"]

    assert web.post_stripe(attached_event(double, web, SCA_CARD)).status_code == 200
    payload = stripe_event("evt_setup", "setup_intent.succeeded", dict(setup), web)
    assert web.post_stripe(payload).status_code == 200
    web.drain()

    assert len(web.rows(payment_methods, payment_methods.c.token == SCA_CARD)) == 1
    assert len(double.posts("/v1/invoices/in_S1/pay")) == 1
    assert web.snapshot()["audit_log"] == audits_before


def test_a_setup_intent_the_card_page_did_not_make_is_ignored(
    stripe_web: Web, double: StripeDouble
) -> None:
    web = stripe_web
    owing(web, double)
    foreign = {
        "id": "seti_merchant_app",
        "object": "setup_intent",
        "status": "succeeded",
        "customer": "cus_S1",
        "payment_method": "pm_card_visa",
        "metadata": {},
    }

    web.post_stripe(stripe_event("evt_foreign", "setup_intent.succeeded", foreign, web))
    web.drain()

    assert web.row(invoices, "in_1")["status"] == "open"
    assert double.posts("/v1/invoices/in_S1/pay") == []
