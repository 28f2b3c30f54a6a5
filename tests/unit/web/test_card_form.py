"""The card form as the customer meets it: what comes back after an error (never the card
number or CVC), every wrong field marked at once, the button that names the charge, the
reactivation heading, the amount on the result page, the plan's name and the languages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from dunning.links import LinkPurpose
from dunning.store.tables import subscriptions
from dunning.web.ratelimit import AttemptLimits
from tests.unit.web.conftest import Web, make_web, web_settings

INPUTS = ("card_number", "exp_month", "exp_year", "cvc")


@pytest.fixture
def owing(web: Web) -> Web:
    """A past-due customer with one open invoice of 125.00 EUR."""
    web.add_customer()
    web.fail_invoice()
    return web


def input_tag(html: str, name: str) -> str:
    found = re.search(rf'<input [^>]*name="{name}"[^>]*>', html)
    assert found is not None, name
    return found.group(0)


def value_of(html: str, name: str) -> str | None:
    found = re.search(r'value="([^"]*)"', input_tag(html, name))
    return found.group(1) if found else None


# -- what comes back after an error -------------------------------------------------------------


def test_a_mistyped_form_keeps_the_expiry_and_choice_but_not_the_number_or_cvc(
    owing: Web,
) -> None:
    response = owing.submit_card(
        owing.link(), "4242 4242 4242 4241", exp_month="11", exp_year="2031", cvc="9876"
    )

    assert response.status_code == 422
    html = response.text
    assert (value_of(html, "exp_month"), value_of(html, "exp_year")) == ("11", "2031")
    assert " checked" in input_tag(html, "remove_old")
    assert value_of(html, "card_number") is None
    assert value_of(html, "cvc") is None
    for secret in ("4242 4242 4242 4241", "4242424242424241", "9876"):
        assert secret not in html


def test_a_declined_card_keeps_the_expiry_and_choice_but_not_the_number_or_cvc(
    owing: Web,
) -> None:
    response = owing.submit_card(
        owing.link(),
        "4000 0000 0000 0002",
        remove_old=False,
        exp_month="10",
        exp_year="2032",
        cvc="7531",
    )

    assert response.status_code == 422
    html = response.text
    assert "Your bank declined this card" in html
    assert (value_of(html, "exp_month"), value_of(html, "exp_year")) == ("10", "2032")
    assert " checked" not in input_tag(html, "remove_old")
    for secret in ("4000 0000 0000 0002", "4000000000000002", "7531", "0002"):
        assert secret not in html


# -- every wrong field at once ------------------------------------------------------------------


def test_every_wrong_field_is_marked_at_once_beside_itself_and_in_a_summary(owing: Web) -> None:
    before = owing.snapshot()

    response = owing.submit_card(owing.link(), "hello", exp_month="13", exp_year="20x", cvc="1")

    assert response.status_code == 422
    html = response.text
    messages = {
        "card_number": "That card number is not valid",
        "exp_month": "Enter the expiry month as a number from 01 to 12",
        "exp_year": "Enter the expiry year as four digits",
        "cvc": "The CVC is the 3 or 4 digits",
    }
    for name, message in messages.items():
        tag = input_tag(html, name)
        assert 'aria-invalid="true"' in tag, name
        assert f'aria-describedby="{name}-error"' in tag, name
        error = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', html)
        assert error is not None, name
        assert error.group(1).startswith(message), name
        after = html.index(tag) + len(tag)
        assert html[after : error.start()].strip() == "", name  # right after its own input
    summary = re.search(r'<div class="error" role="alert" id="form-errors">(.*?)</div>', html, re.S)
    assert summary is not None
    assert "Some card details need correcting" in summary.group(1)
    assert all(f'href="#{name}"' in summary.group(1) for name in INPUTS)
    assert owing.snapshot() == before


def test_only_the_wrong_fields_are_marked(owing: Web) -> None:
    html = owing.submit_card(owing.link(), exp_month="02", exp_year="2026").text

    assert 'aria-invalid="true"' in input_tag(html, "exp_month")
    assert "That card has expired" in html
    for name in ("card_number", "exp_year", "cvc"):
        assert "aria-invalid" not in input_tag(html, name), name


def test_a_clean_form_marks_nothing(owing: Web) -> None:
    html = owing.client.get(owing.link()).text

    assert 'aria-invalid="true"' not in html
    assert 'role="alert"' not in html


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Web]:
    yield from make_web(web_settings(tmp_path), limits=AttemptLimits(per_link=2, per_address=3))


def test_mistyped_forms_do_not_count_against_the_attempt_limits(strict: Web) -> None:
    strict.add_customer()
    path = strict.link()
    token = strict.open_form(path)

    typos = [
        strict.submit_card(path, "hello", csrf=token, exp_month="13", cvc="1").status_code
        for _ in range(8)
    ]
    declines = [strict.submit_card(path, "4000000000000002", csrf=token) for _ in range(3)]

    assert typos == [422] * 8
    assert [r.status_code for r in declines] == [422, 422, 429]


# -- the button and the note --------------------------------------------------------------------


def test_when_money_is_owed_the_button_names_the_charge_and_no_note_says_otherwise(
    owing: Web,
) -> None:
    html = owing.client.get(owing.link()).text

    assert '<button type="submit" id="card-submit">Pay €125.00</button>' in html
    assert "When you press the button, €125.00 is charged to the new card at once." in html
    assert "not a charge" not in html
    assert ">Update card</button>" not in html


def test_danish_button_uses_the_danish_amount(web: Web) -> None:
    web.add_customer(locale="da_DK")
    web.fail_invoice()

    html = web.client.get(web.link()).text

    assert ">Betal 125,00\xa0€</button>" in html
    assert "trækkes 125,00\xa0€ på det nye kort med det samme" in html
    assert "ikke en betaling" not in html


def test_with_nothing_owed_the_button_updates_the_card_and_the_note_explains_the_check(
    web: Web,
) -> None:
    web.add_customer()

    html = web.client.get(web.link()).text

    assert '<button type="submit" id="card-submit">Update card</button>' in html
    assert "It is not a charge, and it disappears from your statement." in html
    assert "Pay " not in html


# -- the reactivation heading -------------------------------------------------------------------


def test_a_suspended_subscription_gets_the_reactivation_heading(owing: Web) -> None:
    with owing.c.engine.begin() as conn:
        conn.execute(update(subscriptions).values(status="suspended"))

    html = owing.client.get(owing.link(purpose=LinkPurpose.reactivate)).text

    assert "<h1>Reactivate your subscription</h1>" in html
    assert "<title>Reactivate your subscription · Acme Mail</title>" in html
    assert "Update your card" not in html


def test_a_past_due_subscription_keeps_the_update_heading(owing: Web) -> None:
    html = owing.client.get(owing.link()).text

    assert "<h1>Update your card</h1>" in html
    assert "Reactivate your subscription" not in html


# -- the amount on the result page --------------------------------------------------------------


def test_the_result_page_shows_the_amount_charged(owing: Web) -> None:
    response = owing.submit_card(owing.link())

    assert response.status_code == 303
    done = owing.client.get(response.headers["location"])
    assert done.status_code == 200
    assert '<p id="amount-charged"><strong>We charged €125.00 to your card.</strong></p>' in (
        done.text
    )


def test_the_result_page_after_reactivation_shows_the_amount_charged(owing: Web) -> None:
    with owing.c.engine.begin() as conn:
        conn.execute(update(subscriptions).values(status="suspended"))
    path = owing.link()
    token = owing.open_form(path)

    response = owing.client.post(f"{path}/reactivate", data={"csrf": token}, follow_redirects=False)

    assert "We charged €125.00 to your card." in owing.client.get(response.headers["location"]).text


def test_an_amount_edited_into_the_address_is_not_shown(owing: Web) -> None:
    location = owing.submit_card(owing.link()).headers["location"]
    base, _, query = location.partition("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    assert params["paid"] == "EUR.12500"

    forged = f"{base}?outcome=paid&paid=EUR.99&sig={params['sig']}"
    unsigned = f"{base}?outcome=paid&paid=EUR.12500"
    other_outcome = f"{base}?outcome=reactivated&paid=EUR.12500&sig={params['sig']}"
    for url in (forged, unsigned, other_outcome):
        page = owing.client.get(url)
        assert page.status_code == 200, url
        assert "amount-charged" not in page.text, url
        assert "€0.99" not in page.text


def test_a_signature_of_another_link_is_not_accepted(web: Web) -> None:
    web.add_customer("cus_1")
    web.add_customer("cus_2")
    web.fail_invoice("cus_1", "in_1")
    location = web.submit_card(web.link("cus_1")).headers["location"]
    query = urlsplit(location).query

    other = web.client.get(f"{web.link('cus_2')}/done?{query}")

    assert other.status_code == 200
    assert "amount-charged" not in other.text


def test_nothing_charged_shows_no_amount(web: Web) -> None:
    web.add_customer()

    location = web.submit_card(web.link()).headers["location"]

    assert "paid=" not in location
    assert "amount-charged" not in web.client.get(location).text


# -- the plan's name and the languages ----------------------------------------------------------


def test_the_page_shows_the_plans_name_as_the_emails_do(named: Web) -> None:
    named.add_customer()

    html = named.client.get(named.link()).text

    assert "<dd>Acme Pro</dd>" in html
    assert "Pro monthly" not in html


def test_a_plan_without_a_name_is_shown_readable(web: Web) -> None:
    web.add_customer()
    with web.c.engine.begin() as conn:
        conn.execute(update(subscriptions).values(plan="team-annual"))

    html = web.client.get(web.link()).text

    assert "<dd>Team Annual</dd>" in html


@pytest.mark.parametrize(
    ("locale", "words", "year_placeholder"),
    [
        ("en", ("Update your card", "Expiry year"), "YYYY"),
        ("da_DK", ("Opdater dit kort", "Udløbsår"), "ÅÅÅÅ"),
        ("de_DE", ("Karte aktualisieren", "Ablaufjahr"), "JJJJ"),
        ("sv_SE", ("Uppdatera ditt kort", "Utgångsår"), "ÅÅÅÅ"),
        ("nb_NO", ("Oppdater kortet ditt", "Utløpsår"), "ÅÅÅÅ"),
        ("nl_NL", ("Je kaart bijwerken", "Vervaljaar"), "JJJJ"),
        ("fr_FR", ("Mettre à jour votre carte", "Numéro de carte"), "AAAA"),
        ("es_ES", ("Actualiza tu tarjeta", "Año de caducidad"), "AAAA"),
    ],
)
def test_the_page_speaks_the_customers_language(
    web: Web, locale: str, words: tuple[str, ...], year_placeholder: str
) -> None:
    web.add_customer(locale=locale, period_end=web.now + timedelta(days=20))

    html = web.client.get(web.link()).text

    assert f'<html lang="{locale[:2]}">' in html
    for word in words:
        assert word in html, word
    assert f'placeholder="{year_placeholder}"' in input_tag(html, "exp_year")
    if locale != "en":
        assert "Update your card" not in html
        assert "Nothing is charged now" not in html


def test_what_comes_back_is_escaped_and_cut_to_the_inputs_length(owing: Web) -> None:
    html = owing.submit_card(owing.link(), "hello", exp_month='"><', exp_year="<b>20").text

    assert value_of(html, "exp_month") == "&#34;&gt;"
    assert value_of(html, "exp_year") == "&lt;b&gt;2"
    assert "<b>" not in html


def test_norwegian_without_a_region_gets_the_bokmal_page(web: Web) -> None:
    web.add_customer(locale="no")

    html = web.client.get(web.link()).text

    assert '<html lang="nb">' in html
    assert "Oppdater kortet ditt" in html


def test_a_cancelled_bank_challenge_keeps_the_expiry_and_choice(owing: Web) -> None:
    path = owing.link()
    token = owing.open_form(path)
    asked = owing.submit_card(path, "4000 0025 0000 3155", csrf=token, exp_month="09")
    sealed = re.search(r'name="card" value="([^"]+)"', asked.text)
    assert sealed is not None

    response = owing.client.post(
        f"{path}/authenticate", data={"csrf": token, "card": sealed.group(1), "result": "deny"}
    )

    assert response.status_code == 422
    assert "was not confirmed with your bank" in response.text
    assert (value_of(response.text, "exp_month"), value_of(response.text, "exp_year")) == (
        "09",
        "2030",
    )
    assert " checked" in input_tag(response.text, "remove_old")
    assert "3155" not in response.text
