"""The card-update page over HTTP: what it shows, and its answers (docs/operations.md §8)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from dunning.links import LinkPurpose
from dunning.store.tables import customers, invoices, notifications, payment_methods, subscriptions
from dunning.web.ratelimit import AttemptLimits
from tests.unit.web.conftest import Web, make_web, web_settings

LABELS = ("Card number", "Expiry month", "Expiry year", "CVC", "Remove my previous card")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


@pytest.fixture
def owing(web: Web) -> Web:
    """A past-due customer with one open invoice of 125.00 EUR."""
    web.add_customer()
    web.fail_invoice()
    return web


# -- GET ----------------------------------------------------------------------------------------


def test_page_shows_the_account_and_the_form(owing: Web) -> None:
    response = owing.client.get(owing.link())

    assert response.status_code == 200
    html = response.text
    for label in LABELS:
        assert f"> {label}</label>" in html or f">{label}</label>" in html
    assert ">Pay €125.00</button>" in html
    assert "Pro monthly" in html
    assert "€125.00" in html
    assert "Visa ending in 0341, expires 04/2026" in html
    assert "Payment overdue" in html
    assert "we charge the amount due, €125.00, to the new card at once" in html
    assert "Reactivate my subscription" not in html
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'none'" in response.headers["content-security-policy"]
    assert "dunning_csrf" in response.headers["set-cookie"]


def test_without_an_open_invoice_the_card_waits_for_the_next_billing_date(web: Web) -> None:
    web.add_customer(period_end=web.now + timedelta(days=20))

    html = web.client.get(web.link()).text

    assert "Nothing is due" in html
    assert (
        "Nothing is charged now. Your new card will be used from your next billing date, " in html
    )
    assert "March 22, 2026" in html


def test_danish_customer_gets_the_danish_page(web: Web) -> None:
    web.add_customer(locale="da_DK")
    web.fail_invoice()

    html = web.client.get(web.link()).text

    assert '<html lang="da">' in html
    for label in ("Kortnummer", "Udløbsmåned", "Udløbsår", "Fjern mit tidligere kort"):
        assert label in html
    assert ">Betal 125,00\xa0€</button>" in html
    assert "125,00\xa0€" in html
    assert "Betaling forfalden" in html


def test_customer_name_is_escaped(web: Web) -> None:
    web.add_customer(name="<script>alert('x')</script>")

    html = web.client.get(web.link()).text

    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html


def test_suspended_subscription_shows_the_reactivation_button(owing: Web) -> None:
    with owing.c.engine.begin() as conn:
        conn.execute(update(subscriptions).values(status="suspended"))

    html = owing.client.get(owing.link(purpose=LinkPurpose.reactivate)).text

    assert ">Reactivate my subscription</button>" in html
    assert "and your subscription is reactivated" in html


# -- 410 ----------------------------------------------------------------------------------------


def test_tampered_link_is_410(owing: Web) -> None:
    path = owing.link()
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")

    response = owing.client.get(tampered)

    assert response.status_code == 410
    assert "This link is not valid" in response.text


def test_expired_link_is_410(owing: Web) -> None:
    path = owing.link(ttl=timedelta(hours=1))
    owing.clock.advance(timedelta(hours=1, seconds=1))

    response = owing.client.get(path)

    assert response.status_code == 410
    assert "This link has expired" in response.text


def test_link_of_an_older_card_generation_is_410(owing: Web) -> None:
    with owing.c.engine.begin() as conn:
        conn.execute(update(customers).values(card_generation=1))

    response = owing.client.get(owing.link(generation=0))

    assert response.status_code == 410
    assert "already been used" in response.text


def test_cancelled_subscription_link_is_410_in_the_customers_language(web: Web) -> None:
    web.add_customer(sub_status="cancelled", locale="da")

    get = web.client.get(web.link())
    post = web.client.post(web.link(), data={"csrf": "x", "card_number": "4242424242424242"})

    assert get.status_code == post.status_code == 410
    assert "Dit abonnement er ophørt" in get.text


def test_unknown_customer_is_410(web: Web) -> None:
    assert web.client.get(web.link("cus_nobody")).status_code == 410


# -- POST: success ------------------------------------------------------------------------------


def test_new_card_pays_the_invoice_and_kills_the_link(owing: Web) -> None:
    path = owing.link()

    response = owing.submit_card(path)

    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{path}/done?outcome=paid&paid=EUR.12500&sig=")
    assert owing.row(invoices, "in_1")["status"] == "paid"
    assert owing.row(subscriptions, "sub_cus_1")["status"] == "active"
    old = owing.row(payment_methods, "pm_cus_1")
    assert (old["status"], old["is_default"]) == ("removed", False)
    new = owing.rows(payment_methods, payment_methods.c.status == "active")
    assert [(c["last4"], c["exp_month"], c["exp_year"]) for c in new] == [("4242", 12, 2030)]
    kinds = {r["kind"] for r in owing.rows(notifications)}
    assert {"card_updated", "payment_recovered"} <= kinds
    assert owing.queued("emails") >= 1
    done = owing.client.get(response.headers["location"])
    assert done.status_code == 200
    assert "the amount due has been paid" in done.text
    assert "Visa ending in 4242" in done.text
    assert owing.client.get(path).status_code == 410


def test_new_card_without_an_open_invoice_charges_nothing(web: Web) -> None:
    web.add_customer()

    response = web.submit_card(web.link(), remove_old=False)

    assert response.headers["location"].endswith("/done?outcome=saved")
    assert web.gateway.ledger.entries() == []
    assert web.row(payment_methods, "pm_cus_1")["status"] == "active"


def test_reactivation_charges_the_current_card(owing: Web) -> None:
    with owing.c.engine.begin() as conn:
        conn.execute(update(subscriptions).values(status="suspended"))
    path = owing.link()
    token = owing.open_form(path)

    response = owing.client.post(f"{path}/reactivate", data={"csrf": token}, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"].startswith(
        f"{path}/done?outcome=reactivated&paid=EUR.12500&sig="
    )
    assert owing.row(invoices, "in_1")["status"] == "paid"
    assert owing.row(subscriptions, "sub_cus_1")["status"] == "active"
    [charge] = owing.gateway.ledger.entries()
    assert (charge.token, charge.amount, charge.initiator) == ("sbx_ok_old", 12500, "customer")


def test_reactivation_is_only_for_a_suspended_subscription(owing: Web) -> None:
    path = owing.link()

    response = owing.client.post(
        f"{path}/reactivate", data={"csrf": owing.open_form(path)}, follow_redirects=False
    )

    assert (response.status_code, response.headers["location"]) == (303, path)
    assert owing.gateway.ledger.entries() == []
    assert owing.row(invoices, "in_1")["status"] == "open"


def test_reactivation_with_a_card_that_declines_again_says_so(web: Web) -> None:
    web.add_customer(token="sbx_insufficient_funds_old")
    web.fail_invoice()
    with web.c.engine.begin() as conn:
        conn.execute(update(subscriptions).values(status="suspended"))
    path = web.link()

    response = web.client.post(
        f"{path}/reactivate", data={"csrf": web.open_form(path)}, follow_redirects=False
    )

    assert response.headers["location"].endswith("outcome=reactivate_declined")
    assert web.row(subscriptions, "sub_cus_1")["status"] == "suspended"
    assert "give us a new card" in web.client.get(response.headers["location"]).text


# -- POST: refusals -----------------------------------------------------------------------------


def test_declined_card_is_422_with_the_form_again_and_nothing_changed(owing: Web) -> None:
    path = owing.link()
    before = owing.snapshot()

    response = owing.submit_card(path, "4000000000000002")

    assert response.status_code == 422
    assert "Your bank declined this card" in response.text
    assert ">Card number</label>" in response.text
    assert owing.snapshot() == before
    assert owing.client.get(path).status_code == 200  # the link still works


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"card_number": "4242 4242 4242 4241"}, "That card number is not valid"),
        ({"card_number": "hello"}, "That card number is not valid"),
        ({"exp_month": "13"}, "Enter the expiry month as a number from 01 to 12"),
        ({"exp_year": "2025"}, "That card has expired"),
        ({"cvc": "12"}, "The CVC is the 3 or 4 digits"),
        ({"card_number": "4000000000000127"}, "the CVC is not right"),
    ],
)
def test_invalid_card_fields_are_422(owing: Web, fields: dict[str, str], message: str) -> None:
    path = owing.link()
    number = fields.pop("card_number", "4242424242424242")

    response = owing.submit_card(path, number, **fields)

    assert response.status_code == 422
    assert message in response.text
    assert owing.row(invoices, "in_1")["status"] == "open"


def test_post_without_the_csrf_cookie_is_403(owing: Web) -> None:
    path = owing.link()
    token = owing.open_form(path)
    owing.client.cookies.clear()
    before = owing.snapshot()

    response = owing.submit_card(path, csrf=token)

    assert response.status_code == 403
    assert "This form has expired" in response.text
    assert owing.snapshot() == before


def test_post_with_a_forged_csrf_field_is_403(owing: Web) -> None:
    path = owing.link()
    token = owing.open_form(path)
    forged = token.split(".")[0] + "." + "0" * 64

    assert owing.submit_card(path, csrf=forged).status_code == 403
    assert owing.client.post(f"{path}/reactivate", data={}).status_code == 403
    assert owing.row(invoices, "in_1")["status"] == "open"


def test_csrf_value_of_another_link_is_403(web: Web) -> None:
    web.add_customer("cus_1")
    web.add_customer("cus_2")
    other = web.open_form(web.link("cus_2"))
    path = web.link("cus_1")
    web.open_form(path)
    web.client.cookies.clear()
    web.client.cookies.set("dunning_csrf", other, domain="testserver.local", path=path)

    response = web.submit_card(path, csrf=other)
    assert response.request.headers["cookie"] == f"dunning_csrf={other}"
    assert response.status_code == 403


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Web]:
    yield from make_web(web_settings(tmp_path), limits=AttemptLimits(per_link=5, per_address=7))


def test_attempts_per_link_are_limited_to_five_in_ten_minutes(strict: Web) -> None:
    strict.add_customer()
    path = strict.link()
    token = strict.open_form(path)

    codes = [strict.submit_card(path, "4000000000000002", csrf=token).status_code for _ in range(6)]
    strict.clock.advance(timedelta(minutes=10))
    later = strict.submit_card(path, "4000000000000002", csrf=token)

    assert codes == [422] * 5 + [429]
    assert later.status_code == 422


def test_attempts_per_address_are_limited_across_links(strict: Web) -> None:
    strict.add_customer("cus_1")
    strict.add_customer("cus_2")
    codes = []
    for cid in ("cus_1", "cus_2"):
        path = strict.link(cid)
        token = strict.open_form(path)
        codes += [
            strict.submit_card(path, "4000000000000002", csrf=token).status_code for _ in range(4)
        ]

    assert codes == [422] * 7 + [429]
    assert "Too many attempts" in strict.submit_card(path, csrf=token).text


# -- 3-D Secure ---------------------------------------------------------------------------------


def _challenge(web: Web, path: str) -> tuple[str, str]:
    token = web.open_form(path)
    response = web.submit_card(path, "4000 0025 0000 3155", csrf=token)
    assert response.status_code == 200
    assert "Confirm the card with your bank" in response.text
    sealed = re.search(r'name="card" value="([^"]+)"', response.text)
    assert sealed is not None
    return token, sealed.group(1)


def test_card_needing_3ds_is_saved_once_the_challenge_is_confirmed(owing: Web) -> None:
    path = owing.link()
    token, sealed = _challenge(owing, path)
    assert owing.row(invoices, "in_1")["status"] == "open"

    response = owing.client.post(
        f"{path}/authenticate",
        data={"csrf": token, "card": sealed, "result": "approve"},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert owing.row(invoices, "in_1")["status"] == "paid"
    [card] = owing.rows(payment_methods, payment_methods.c.is_default.is_(True))
    assert (card["last4"], card["token"].startswith("sbx_ok_")) == ("3155", True)


@pytest.mark.parametrize("change", ["deny", "tamper"])
def test_cancelled_or_tampered_challenge_is_422_and_changes_nothing(
    owing: Web, change: str
) -> None:
    path = owing.link()
    token, sealed = _challenge(owing, path)
    before = owing.snapshot()
    if change == "tamper":
        sealed = sealed[:-1] + ("0" if sealed[-1] != "0" else "1")

    response = owing.client.post(
        f"{path}/authenticate",
        data={"csrf": token, "card": sealed, "result": "deny" if change == "deny" else "approve"},
        follow_redirects=False,
    )

    assert response.status_code == 422
    assert "was not confirmed with your bank" in response.text
    assert owing.snapshot() == before
