"""Every email in every language we write: which language a customer gets (import or Stripe's
``preferred_locales``), and that each language's emails are whole and in that language."""

from __future__ import annotations

import re

import pytest

from dunning.mail.locales import LOCALES, customer_locale
from dunning.mail.render import EMAIL_KINDS, render_email
from dunning.mail.samples import sample_context

BRAND = {"brand_name": "Acme Streaming", "support_email": "help@acme.test"}
GREETING = {"en": "Hi", "da": "Hej", "de": "Hallo", "sv": "Hej", "nb": "Hei", "nl": "Hallo",
            "fr": "Bonjour", "es": "Hola"}  # fmt: skip
# Words of the English emails that must not show in another language's email.
ENGLISH = re.compile(r"\b(your|the payment|subscription|Update my card|Need help)\b")


@pytest.mark.parametrize(
    ("preferred", "expected"),
    [
        (["de-AT", "en"], "de_AT"),
        (["fr-CA"], "fr_CA"),
        (["sv"], "sv"),
        (["no"], "nb"),
        (["nb-NO"], "nb_NO"),
        (["nn"], "nb"),
        (["pl", "nl-BE"], "nl_BE"),
        (["es-419"], "es_419"),
        (["ja", "zz-ZZ", 7, ""], "en"),
        ([], "en"),
    ],
)
def test_customer_locale_is_the_first_preferred_language_we_write(
    preferred: list[object], expected: str
) -> None:
    assert customer_locale(preferred) == expected


def test_the_languages() -> None:
    assert set(LOCALES) == {"en", "da", "de", "sv", "nb", "nl", "fr", "es"}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_each_email_is_whole_and_in_its_language(kind: str, locale: str) -> None:
    context = sample_context(kind) | {"customer_name": "Ana Jensen", "plan": "Acme Pro"}

    r = render_email(kind, locale, context, **BRAND)

    assert r.text.startswith(GREETING[locale])
    assert f'<html lang="{locale}">' in r.html
    assert "Ana Jensen" in r.text
    assert "Ana Jensen" in r.html
    assert "Acme Pro" in r.subject + r.text
    assert "help@acme.test" in r.text
    assert 'href="mailto:help@acme.test"' in r.html
    if context["update_url"]:
        assert r.html.count(f'href="{context["update_url"]}"') == 2  # button and plain link
    if locale != "en":
        assert ENGLISH.findall(r.subject + r.text) == []


@pytest.mark.parametrize("locale", LOCALES)
def test_expiry_reminder_names_the_day_in_every_language(locale: str) -> None:
    r = render_email("card_expiring", locale, sample_context("card_expiring"), **BRAND)
    assert "2026" in r.subject
    assert "31" in r.subject


@pytest.mark.parametrize("locale", LOCALES)
def test_receipt_confirms_a_new_card_in_every_language(locale: str) -> None:
    context = sample_context("payment_recovered")
    context["new_card"] = {"network": "mastercard", "last4": "4444", "exp_month": 11,
                           "exp_year": 2029}  # fmt: skip
    without = render_email("payment_recovered", locale, sample_context("payment_recovered"),
                           **BRAND)  # fmt: skip

    r = render_email("payment_recovered", locale, context, **BRAND)

    assert "4444" in r.text
    assert "11/2029" in r.text
    assert "4444" not in without.text


def test_text_only_language_gets_a_list_and_paragraphs_in_html() -> None:
    html = render_email("payment_failed", "de", sample_context("payment_failed"), **BRAND).html
    assert "<ul>\n<li>Aktualisieren Sie Ihre Karte" in html
    assert "<p>So können Sie das lösen:</p>" in html
    assert ">Karte aktualisieren</a>" in html
