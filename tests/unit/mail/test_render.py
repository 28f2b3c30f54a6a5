"""Rendering rules: escaping, strictness, locale choice, money and dates per customer."""

from __future__ import annotations

from typing import Any

import pytest

from dunning.errors import PermanentError
from dunning.mail.render import (
    EMAIL_KINDS,
    EmailContextError,
    UnknownEmailKind,
    _environment,
    render_email,
)
from dunning.mail.samples import sample_context
from tests.unit.mail.htmlcheck import check_html

BRAND = {"brand_name": "Acme Streaming", "support_email": "help@acme.test"}
NBSP = "\xa0"


def render(kind: str, locale: str = "en", **changes: Any) -> Any:
    context = sample_context(kind)
    context.update(changes)
    return render_email(kind, locale, context, **BRAND)


def test_customer_name_with_markup_is_escaped_in_html() -> None:
    hostile = '<script>alert("x")</script> & "Bo"'
    r = render("payment_failed", customer_name=hostile, plan="<b>Pro</b>")
    assert "<script>" not in r.html
    assert "&lt;script&gt;" in r.html
    assert "&lt;b&gt;Pro&lt;/b&gt;" in r.html
    assert check_html(r.html).scripts == 0
    # plain text is not HTML: the name stays as the customer wrote it
    assert hostile in r.text


def test_update_url_with_quotes_cannot_break_out_of_the_attribute() -> None:
    r = render("payment_failed", update_url='https://x.test/update/a"onclick="evil')
    assert 'href="https://x.test/update/a&#34;onclick=&#34;evil"' in r.html


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "€125.00"),
        ("en_GB", "€125.00"),
        ("da", f"125,00{NBSP}€"),
        ("da_DK", f"125,00{NBSP}€"),
    ],
)
def test_amounts_are_formatted_for_the_locale(locale: str, expected: str) -> None:
    r = render("payment_failed", locale)
    assert expected in r.text
    assert expected in r.html


def test_amounts_use_the_currency_exponent() -> None:
    assert "¥1,250" in render("payment_failed", amount=1250, currency="JPY").text
    assert "DKK" in render("payment_failed", amount=9900, currency="DKK").text
    assert "99.00" in render("payment_failed", amount=9900, currency="DKK").text
    assert f"99,00{NBSP}kr." in render("payment_failed", "da", amount=9900, currency="DKK").text
    assert "KWD" in render("payment_failed", amount=1234, currency="KWD").text
    assert "1.234" in render("payment_failed", amount=1234, currency="KWD").text


def test_dates_are_the_customers_day_in_their_time_zone() -> None:
    # 23:30 UTC on 3 March is already 4 March in Copenhagen, still 3 March in New York
    at = "2025-03-03T23:30:00Z"
    assert "March 4, 2025" in render("payment_failed", next_attempt_at=at).text
    ny = render("payment_failed", next_attempt_at=at, timezone="America/New_York")
    assert "March 3, 2025" in ny.text
    assert "March 3, 2025" in render("payment_failed", next_attempt_at=at, timezone="").text


def test_unknown_time_zone_falls_back_to_utc() -> None:
    r = render("payment_failed", next_attempt_at="2025-03-03T23:30:00Z", timezone="Mars/Base")
    assert "March 3, 2025" in r.text


def test_danish_dates_and_words() -> None:
    r = render("payment_failed", "da")
    assert "tirsdag den 4. marts 2025" in r.text
    assert r.subject == "Din betaling for Pro gik ikke igennem"
    assert '<html lang="da">' in r.html


@pytest.mark.parametrize("locale", ["pl", "ja_JP", "", "xx_YY", "not a locale", "EN-us"])
def test_unknown_locales_fall_back_to_english(locale: str) -> None:
    r = render("payment_failed", locale)
    assert r.subject == "Your payment for Pro did not go through"
    assert "€125.00" in r.text
    assert "Tuesday, March 4, 2025" in r.text


def test_regional_locale_keeps_its_date_format() -> None:
    assert "Tuesday, 4 March 2025" in render("payment_failed", "en_GB").text
    assert "tirsdag den 4. marts 2025" in render("payment_failed", "da-DK").text


def test_brand_and_support_address_come_from_the_caller() -> None:
    r = render_email(
        "card_expiring",
        "en",
        sample_context("card_expiring"),
        brand_name="Other Brand",
        support_email="care@other.test",
    )
    assert "Other Brand" in r.text
    assert "care@other.test" in r.text
    assert "mailto:care@other.test" in r.html
    assert "Acme" not in r.html


def test_missing_context_key_raises() -> None:
    context = sample_context("payment_failed")
    del context["suspend_at"]
    with pytest.raises(EmailContextError, match="suspend_at"):
        render_email("payment_failed", "en", context, **BRAND)


def test_unknown_kind_is_a_permanent_error_listing_the_kinds() -> None:
    with pytest.raises(UnknownEmailKind) as info:
        render_email("payment_faild", "en", sample_context("payment_failed"), **BRAND)
    assert isinstance(info.value, PermanentError)
    for kind in EMAIL_KINDS:
        assert kind in str(info.value)
    with pytest.raises(UnknownEmailKind):
        sample_context("nope")


NULLABLE = (
    "card",
    "new_card",
    "update_url",
    "next_attempt_at",
    "suspend_at",
    "paid_at",
    "invoice_id",
    "expires_on",
)


@pytest.mark.parametrize("locale", ["en", "da"])
@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_every_kind_renders_with_all_optional_values_none(kind: str, locale: str) -> None:
    r = render(kind, locale, customer_name="", **dict.fromkeys(NULLABLE))
    for part in (r.subject, r.text, r.html):
        assert "None" not in part
    assert "/update/" not in r.html  # no link, no button
    check_html(r.html)


def test_card_expiring_without_amount_leaves_the_amount_out() -> None:
    r = render("card_expiring", amount=0, currency="")
    assert "next payment goes through" in r.text


def test_printing_a_none_is_refused_rather_than_shown() -> None:
    with pytest.raises(EmailContextError, match="None"):
        render("payment_failed", currency="")


def test_suspension_email_offers_reactivation_with_the_link() -> None:
    r = render("subscription_suspended")
    assert "Reactivate my subscription" in r.html
    assert "Reactivate my subscription:\nhttps://billing.example.com/update/" in r.text


def test_receipt_names_amount_card_and_date_but_no_internal_id() -> None:
    r = render("payment_recovered")
    assert r.subject == "Payment received: €125.00 for Pro"
    for needle in ("Visa ending in 4242", "March 5, 2025"):
        assert needle in r.text
        assert needle in r.html
    assert "inv_1001" not in r.text + r.html


def test_failure_email_says_what_to_do_and_that_we_retry() -> None:
    text = render("payment_failed").text
    assert "Update your card" in text
    assert "Contact your bank" in text
    assert "We will try again automatically on Tuesday, March 4, 2025." in text
    assert "suspended" in text


def test_card_details_show_only_brand_and_last_four() -> None:
    card = {"network": "mastercard", "last4": "5559", "exp_month": 1, "exp_year": 2030}
    r = render("payment_failed", card=card)
    assert "Mastercard ending in 5559" in r.text


def test_subject_is_one_line_even_when_data_has_newlines() -> None:
    r = render("payment_failed", plan="Pro\nBcc: x@evil.test")
    assert "\n" not in r.subject
    assert r.subject == "Your payment for Pro Bcc: x@evil.test did not go through"


def test_environment_is_built_once() -> None:
    render("payment_failed")
    assert _environment() is _environment()
