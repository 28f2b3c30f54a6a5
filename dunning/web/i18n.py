"""The card-update page's words, one data file per language (``texts/<code>.toml``), and
locale-aware formatting.

The languages are those of the emails, so a customer lands on a page in the language of the
email that brought them. Placeholders are filled with ``str.format`` in the views and templates;
the result is escaped there like any other value.
"""

from __future__ import annotations

import tomllib
from datetime import date
from functools import cache
from pathlib import Path

from babel.dates import format_date

from dunning.mail.formatting import choose_locale, money

LOCALES = ("en", "da", "de", "sv", "nb", "nl", "fr", "es")
TEXTS_DIR = Path(__file__).with_name("texts")


@cache
def texts(code: str) -> dict[str, str]:
    """The words of one language, read once from its data file."""
    with (TEXTS_DIR / f"{code}.toml").open("rb") as file:
        loaded = tomllib.load(file)
    return {str(key): str(value) for key, value in loaded.items()}


class Lang:
    """The words and formats of one page view."""

    def __init__(self, requested: str | None) -> None:
        self.code, self.format_locale = choose_locale(requested, LOCALES)
        self.t = texts(self.code)

    def money(self, amount: int, currency: str) -> str:
        return money(amount, currency, self.format_locale) or ""

    def amounts(self, due: tuple[tuple[int, str], ...]) -> str:
        """Several currencies' amounts in one text: "€29.00 + $5.00"."""
        return " + ".join(self.money(amount, currency) for amount, currency in due)

    def day(self, when: date) -> str:
        return str(format_date(when, "long", locale=self.format_locale))
