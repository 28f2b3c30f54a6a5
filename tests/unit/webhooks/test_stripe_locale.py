"""The locale a Stripe customer gets from its ``preferred_locales``: the first language we
write, as Stripe spells it; Norwegian in any of its tags reads the Bokmål (``nb``) emails."""

from __future__ import annotations

import pytest

from dunning.mail.formatting import choose_locale
from dunning.mail.locales import LOCALES
from dunning.webhooks.stripe_objects import pick_locale


@pytest.mark.parametrize(
    ("preferred", "expected"),
    [
        (["da-DK", "en"], "da-DK"),
        (["it-IT", "fr"], "fr"),
        (["no"], "nb"),
        (["nn"], "nb"),
        (["no-NO"], "nb-NO"),
        (["nn-NO"], "nb-NO"),
        (["nb-NO"], "nb-NO"),
        (["NO-no"], "nb-no"),
        (["it", "no", "en"], "nb"),
        (["ja", "zz-ZZ", 7, ""], "en"),
    ],
)
def test_the_first_preferred_language_with_emails(preferred: list[object], expected: str) -> None:
    assert pick_locale(preferred, LOCALES) == expected


@pytest.mark.parametrize("tag", ["no", "nn", "no-NO", "nn-NO", "nb-NO"])
def test_norwegian_customers_get_the_bokmal_emails(tag: str) -> None:
    assert choose_locale(pick_locale([tag], LOCALES), LOCALES)[0] == "nb"


def test_norwegian_without_bokmal_emails_falls_through() -> None:
    assert pick_locale(["no-NO", "da"], ("en", "da")) == "da"
    assert pick_locale(["nn"], ("en", "da")) == "en"
