"""Locale-aware display values for emails: locale choice, money, dates and cards, via Babel.

Babel's formatting costs tens of microseconds a call and the outbox renders thousands of emails
a second with few distinct amounts, days and locales, so the pure formatters are memoised.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision

from dunning.mail.locales import parse_locale

logger = logging.getLogger(__name__)

DEFAULT_LOCALE = "en"
NETWORK_NAMES = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
    "dankort": "Dankort",
}


@dataclass(frozen=True)
class CardView:
    """A card as an email shows it: brand, last four digits and expiry, never more."""

    brand: str
    last4: str
    expiry: str


@functools.lru_cache(maxsize=256)
def choose_locale(requested: str | None, available: tuple[str, ...]) -> tuple[str, str]:
    """Return ``(template_locale, format_locale)`` for a customer's locale.

    ``da_DK`` and ``da-dk`` use the ``da`` templates and Danish formatting; a language with no
    templates falls back to English for both, so an English text never shows foreign dates.
    """
    parsed = parse_locale(requested)
    if parsed is None or parsed.language not in available:
        return DEFAULT_LOCALE, DEFAULT_LOCALE
    return parsed.language, str(parsed)


@functools.lru_cache(maxsize=1024)
def zone(name: str | None) -> tzinfo:
    """The customer's IANA zone; "" or an unknown name means UTC (a wrong day beats no email)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r in email context; showing dates in UTC", name)
        return UTC


@functools.lru_cache(maxsize=4096)
def money(amount_minor: int | None, currency: str | None, locale: str) -> str | None:
    """Format an amount in minor units with the currency's own exponent (JPY has none)."""
    if amount_minor is None or not currency:
        return None
    code = currency.upper()
    value = Decimal(int(amount_minor)).scaleb(-get_currency_precision(code))
    return str(format_currency(value, code, locale=locale))


def parse_instant(value: str | None) -> datetime | None:
    """Parse an ISO-8601 instant; a value without an offset is UTC (SQLite drops offsets)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def day_of(value: str | None, tz: tzinfo, locale: str, fmt: str = "long") -> str | None:
    """The calendar day of an instant in the customer's zone, written for the locale."""
    instant = parse_instant(value)
    if instant is None:
        return None
    return _day_text(instant.astimezone(tz).date(), fmt, locale)


def calendar_day(value: str | None, locale: str, fmt: str = "long") -> str | None:
    """An ISO calendar date (no zone: it is already a day), written for the locale."""
    if not value:
        return None
    return _day_text(date.fromisoformat(value[:10]), fmt, locale)


@functools.lru_cache(maxsize=4096)
def _day_text(day: date, fmt: str, locale: str) -> str:
    return str(format_date(day, fmt, locale=locale))


def card_view(card: Any) -> CardView | None:
    """Reduce a card mapping to what an email may show; ``None`` stays ``None``."""
    if not card:
        return None
    network = str(card.get("network") or "").lower()
    brand = NETWORK_NAMES.get(network, network.title() or "Card")
    month, year = card.get("exp_month"), card.get("exp_year")
    expiry = f"{int(month):02d}/{int(year)}" if month and year else ""
    return CardView(brand=brand, last4=str(card.get("last4") or "????")[-4:], expiry=expiry)
