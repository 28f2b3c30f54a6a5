"""French typography in every French email: a no-break space (U+00A0, or the narrow U+202F)
before ``:``, ``;``, ``?`` and ``!``, never a plain space that may wrap or no space at all, in
the subject, the text and the text of the HTML part. Links and times (09:00) are not prose."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from dunning.mail.render import EMAIL_KINDS, render_email
from dunning.mail.samples import sample_context

BRAND = {"brand_name": "Acme Streaming", "support_email": "help@acme.test"}
NO_BREAK = "\u00a0\u202f"
# What is not French prose: links, email addresses, times and the signature separator.
NOT_PROSE = re.compile(r"(?:https?|mailto):\S+|\S+@\S+|\d{1,2}:\d\d|^-- $", re.MULTILINE)
BAD = re.compile(rf"(?<![{NO_BREAK}])[:;?!]")
VARIANTS = {
    "sample": {},
    "no name, no card": {"customer_name": None, "card": None},
}


class _Text(HTMLParser):
    """The text an HTML part shows: no tags, no attributes, no style sheet."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._skip += tag in ("style", "head")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "head")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n".join(parser.parts)


def _bad_spots(text: str) -> list[str]:
    prose = NOT_PROSE.sub(" ", text)
    return [prose[max(0, m.start() - 20) : m.end()] for m in BAD.finditer(prose)]


def test_the_check_catches_what_it_is_for() -> None:
    assert _bad_spots("Montant: 29,00 €") == ["Montant:"]
    spots = _bad_spots("Besoin d\u2019aide ? Merci !")
    assert spots == ["Besoin d\u2019aide ?", "soin d\u2019aide ? Merci !"]
    assert _bad_spots("Montant\u00a0: 29,00 € à 09:00 https://x.test/a?b=1 Merci\u202f!") == []


@pytest.mark.parametrize("locale", ["fr", "fr_CA"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_french_emails_put_a_no_break_space_before_colons(
    kind: str, variant: str, locale: str
) -> None:
    context = sample_context(kind) | VARIANTS[variant]
    email = render_email(kind, locale, context, **BRAND)
    for part, text in (
        ("subject", email.subject),
        ("text", email.text),
        ("html", _html_text(email.html)),
    ):
        assert _bad_spots(text) == [], f"{kind}.{locale} {part}"
