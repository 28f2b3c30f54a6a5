"""Golden files: every email kind in every locale, subject + text + HTML, byte for byte.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit/mail``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dunning.mail.render import EMAIL_KINDS, LOCALES, render_email
from dunning.mail.samples import sample_context
from tests.unit.mail.htmlcheck import check_html

GOLDEN = Path(__file__).parent / "golden"
BRAND = {"brand_name": "Acme Streaming", "support_email": "help@acme.test"}


def _document(kind: str, locale: str) -> str:
    r = render_email(kind, locale, sample_context(kind), **BRAND)
    return f"Subject: {r.subject}\n\n===== text =====\n{r.text}\n===== html =====\n{r.html}"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_email_matches_golden_file(kind: str, locale: str) -> None:
    path = GOLDEN / f"{kind}.{locale}.txt"
    actual = _document(kind, locale)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}; run with UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_html_is_balanced_and_carries_the_link(kind: str, locale: str) -> None:
    context = sample_context(kind)
    r = render_email(kind, locale, context, **BRAND)
    checker = check_html(r.html)
    assert checker.scripts == 0
    if context["update_url"]:
        assert context["update_url"] in checker.links
        assert context["update_url"] in r.text
    assert "mailto:help@acme.test" in checker.links


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_text_part_has_no_html_tags(kind: str, locale: str) -> None:
    r = render_email(kind, locale, sample_context(kind), **BRAND)
    for tag in ("<p", "<a ", "<br", "<strong", "<table", "</", "&amp;", "&lt;"):
        assert tag not in r.text
        assert tag not in r.subject


def test_every_kind_has_a_text_template_in_every_locale() -> None:
    from dunning.mail.render import TEMPLATE_DIR

    for kind in EMAIL_KINDS:
        for locale in LOCALES:
            # the HTML part is made from the text where there is no .html file
            assert (TEMPLATE_DIR / f"{kind}.{locale}.txt").is_file()
