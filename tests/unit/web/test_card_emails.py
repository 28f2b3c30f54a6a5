"""What the customer receives after changing their card on the page: one email, with the
plan's name, from the brand, answerable (docs/emails.md)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import pytest

from dunning.gateways.base import Decline
from dunning.gateways.sandbox import Outcome
from dunning.store.tables import notifications
from tests.unit.web.conftest import Web, make_web, web_settings


def _sent(web: Web) -> list[EmailMessage]:
    web.drain()
    return [m for m in web.mail.sent if "cus_1@example.com" in str(m["To"])]


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_card_update_that_pays_the_invoice_sends_one_email(named: Web) -> None:
    named.add_customer()
    named.fail_invoice()
    _sent(named)  # the payment-failed email
    named.mail.sent.clear()

    response = named.submit_card(named.link())

    assert response.headers["location"].count("/done?outcome=paid&paid=EUR.") == 1
    sent = _sent(named)
    assert [str(m["Subject"]) for m in sent] == ["Payment received: €125.00 for Acme Pro"]
    text = _text(sent[0])
    assert "Your new card has been saved" in text
    assert "Visa ending in 4242 (expires 12/2030)" in text
    assert "in_1" not in text
    kinds = {r["kind"]: r["status"] for r in named.rows(notifications)}
    assert kinds["card_updated"] == "cancelled"


def test_card_update_with_nothing_due_confirms_with_the_plan_name(named: Web) -> None:
    named.add_customer()

    named.submit_card(named.link())

    sent = _sent(named)
    assert [str(m["Subject"]) for m in sent] == ["Your payment card has been updated"]
    text = _text(sent[0])
    assert "Future payments for your Acme Pro subscription will be charged to" in text
    assert "for your  subscription" not in text


def test_declined_charge_still_confirms_the_card_at_once(named: Web) -> None:
    named.add_customer()
    named.fail_invoice()
    _sent(named)
    named.mail.sent.clear()

    # the card passes verification, the charge is declined
    decline = Outcome("declined", Decline(decline_code="insufficient_funds"))
    named.gateway.oracle = lambda request, now: decline
    response = named.submit_card(named.link())

    assert response.headers["location"].endswith("outcome=charge_declined")
    subjects = [str(m["Subject"]) for m in _sent(named)]
    assert "Your payment card has been updated" in subjects
    assert not any(s.startswith("Payment received") for s in subjects)


def test_emails_come_from_the_brand_and_replies_go_to_support(named: Web) -> None:
    named.add_customer()
    named.submit_card(named.link())

    message = _sent(named)[0]

    assert parseaddr(str(message["From"])) == ("Acme Mail", "billing@example.com")
    assert str(message["Reply-To"]) == "help@acme.example"


def test_from_name_and_reply_to_can_be_set_or_left_out(tmp_path: Path) -> None:
    brand = {"name": "Acme", "support_email": "help@acme.example", "from_name": "",
             "reply_to": ""}  # fmt: skip
    web = next(make_web(web_settings(tmp_path, brand=brand)))
    web.add_customer()
    web.submit_card(web.link())

    message = _sent(web)[0]

    assert str(message["From"]) == "billing@example.com"
    assert message["Reply-To"] is None


@pytest.mark.parametrize("locale", ["en", "da"])
def test_card_page_support_address_is_a_mailto_link(named: Web, locale: str) -> None:
    named.add_customer(locale=locale)

    html = named.client.get(named.link()).text

    assert '<a href="mailto:help@acme.example">help@acme.example</a>' in html
