"""What every customer email must get right in every language: no internal ids, the plan's
name, sentences that are spaced, the expiry date, the merchant's look and templates
(docs/emails.md)."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest

from dunning.mail.render import EMAIL_KINDS, LOCALES, Look, render_email
from dunning.mail.samples import sample_context

BRAND = {"brand_name": "Acme Streaming", "support_email": "help@acme.test"}


def _visible(html: str) -> str:
    """The HTML's text as a reader sees it (tags become spaces only where they break lines)."""
    html = re.sub(r"<(p|br|tr|td|li|ul|table|title)\b[^>]*>", "\n", html)
    return unescape(re.sub(r"<[^>]+>", "", html))


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_no_internal_invoice_id_and_the_plan_name(kind: str, locale: str) -> None:
    context = sample_context(kind) | {"plan": "Acme Pro", "invoice_id": "in_1MzQ8fLk"}

    r = render_email(kind, locale, context, **BRAND)

    for part in (r.subject, r.text, r.html):
        assert "in_1MzQ8fLk" not in part
    assert "Acme Pro" in r.text + r.html


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_every_sentence_is_followed_by_a_space(kind: str, locale: str) -> None:
    r = render_email(kind, locale, sample_context(kind), **BRAND)

    for part in (r.text, _visible(r.html)):
        glued = re.findall(r"\w[.!?:][A-ZÆØÅÄÖÜÉ]\w", part)
        assert glued == [], f"sentences run together in {kind}.{locale}: {glued}"


def test_final_notice_html_keeps_the_space_between_its_sentences() -> None:
    html = render_email("final_notice", "en", sample_context("final_notice"), **BRAND).html
    assert "will be suspended. We will try again" in _visible(html)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "Your Visa ending in 4242 expires on March 31, 2026"),
        ("da", "Dit Visa-kort, der ender på 4242, udløber den 31. marts 2026"),
    ],
)
def test_expiry_reminder_gives_the_date_in_its_subject(locale: str, expected: str) -> None:
    r = render_email("card_expiring", locale, sample_context("card_expiring"), **BRAND)
    assert r.subject == expected


def test_logo_and_accent_colour_come_from_the_look() -> None:
    look = Look(logo_url="https://cdn.acme.test/logo.png", accent_color="#c2410c")

    html = render_email("payment_failed", "en", sample_context("payment_failed"), **BRAND,
                        look=look).html  # fmt: skip

    assert '<img src="https://cdn.acme.test/logo.png" alt="Acme Streaming"' in html
    assert "#c2410c" in html
    assert "#1a56db" not in html


def test_a_merchant_template_directory_is_searched_first(tmp_path: Path) -> None:
    (tmp_path / "payment_failed.en.txt").write_text(
        '{% extends "layout.en.txt" %}\n'
        "{% set subject %}Payment trouble with {{ plan }}{% endset %}\n"
        "{% block body %}Our own words about {{ amount }}.{% endblock %}\n"
        "{% block button %}Fix it{% endblock %}\n",
        encoding="utf-8",
    )
    look = Look(templates=tmp_path)

    own = render_email("payment_failed", "en", sample_context("payment_failed"), **BRAND,
                       look=look)  # fmt: skip
    other = render_email("final_notice", "en", sample_context("final_notice"), **BRAND,
                         look=look)  # fmt: skip

    assert own.subject == "Payment trouble with Pro"
    assert "Our own words about €125.00." in own.text
    assert "Fix it:" in own.text
    assert other.subject.startswith("Final notice")
