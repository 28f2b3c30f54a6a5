"""The shape of one import line: a customer with cards, subscriptions and open invoices.

Field-level rules live here (pydantic, ``extra="forbid"``, strict types); rules that relate one
field to another (one default card, a subscription's card is the customer's) are in
:mod:`dunning.imports.checks`.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Literal

from babel.numbers import list_currencies
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from dunning.gateways.cards import PAN_CANDIDATE, mask_pans
from dunning.mail.locales import parse_locale

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@cache
def _known_locale(tag: str) -> bool:
    return parse_locale(tag) is not None  # "no-NO" too: Norwegian, which Babel calls nb


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise PydanticCustomError("email", "not an email address")
    return value


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isupper():
        raise PydanticCustomError("currency", "must be 3 upper-case letters (ISO 4217)")
    if value not in _currencies():
        raise PydanticCustomError("currency", "not an ISO 4217 currency code")
    return value


def _locale(value: str) -> str:
    if not _known_locale(value):
        raise PydanticCustomError("locale", "unknown locale (use a tag such as en, da or en-GB)")
    return value


def _timezone(value: str) -> str:
    if value not in _timezones():
        raise PydanticCustomError(
            "timezone", "unknown IANA time zone (use a name such as Europe/Copenhagen)"
        )
    return value


def _token(value: str) -> str:
    # Never echo the value: a card number pasted into the token column must not reach the
    # output, the log or the database.
    if PAN_CANDIDATE.search(value) and mask_pans(value) != value:
        raise PydanticCustomError(
            "card_number",
            "looks like a card number; import the gateway's token, never the card number",
        )
    return value


def _free_text(value: str) -> str:
    # A card number typed into a name is refused like one in the token column, unechoed.
    if PAN_CANDIDATE.search(value) and mask_pans(value) != value:
        raise PydanticCustomError(
            "card_number", "looks like a card number; card numbers are never stored"
        )
    return value


# Normalised to UTC with the standard library's tzinfo: cheaper to compare and format later.
Instant = Annotated[AwareDatetime, AfterValidator(_utc)]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
Currency = Annotated[str, AfterValidator(_currency)]
Amount = Annotated[int, Field(ge=0, le=2**63 - 1)]
LocaleTag = Annotated[str, Field(min_length=2, max_length=16), AfterValidator(_locale)]
TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_timezone)]
Token = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_token)]
Name = Annotated[str, Field(max_length=200), AfterValidator(_free_text)]
SubscriptionStatusName = Literal["active", "past_due", "suspended", "cancelled"]


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CardLine(_Line):
    """A stored card: the gateway's token and what may be shown (brand, last4, expiry)."""

    id: Id
    gateway: Literal["sandbox", "stripe", "quickpay"]
    token: Token
    network: Annotated[str, Field(pattern=r"^[a-z_]{1,16}$")] = "unknown"
    last4: Annotated[str, Field(pattern=r"^[0-9]{4}$")]
    exp_month: Annotated[int, Field(ge=1, le=12)]
    exp_year: Annotated[int, Field(ge=2000, le=2100)]
    default: bool = False


class SubscriptionLine(_Line):
    """A subscription; ``status`` omitted means active for a new one and unchanged otherwise."""

    id: Id
    plan: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_free_text)]
    amount: Amount
    currency: Currency
    interval: Literal["month", "year"] = "month"
    payment_method: Id | None = None
    status: SubscriptionStatusName | None = None
    last_payment_at: Instant | None = None
    current_period_end: Instant | None = None


class DeclineLine(_Line):
    """The decline that put an imported invoice into dunning."""

    decline_code: Annotated[str, Field(min_length=1, max_length=64)]
    network_code: Annotated[str, Field(min_length=1, max_length=8)] | None = None
    advice_code: Literal["do_not_try_again", "confirm_card_data", "try_again_later"] | None = None
    network_advice_code: Annotated[str, Field(pattern=r"^[0-9A-Z]{2}$")] | None = None


class InvoiceLine(_Line):
    """An invoice already in dunning: ``attempts`` charges have failed since ``first_failed_at``,
    the last at ``last_attempt_at``; ``notified`` says the customer has been told already."""

    id: Id
    subscription: Id
    amount: Amount
    currency: Currency
    first_failed_at: Instant
    attempts: Annotated[int, Field(ge=1, le=1000)]
    last_attempt_at: Instant | None = None
    decline: DeclineLine | None = None
    notified: bool = False


class CustomerLine(_Line):
    """One line of an import file."""

    id: Id
    email: Email
    name: Name = ""
    locale: LocaleTag = "en"
    timezone: TimeZone = "UTC"
    billing_emails: Annotated[tuple[Email, ...], Field(max_length=20)] = ()
    payment_methods: Annotated[tuple[CardLine, ...], Field(max_length=50)] = ()
    subscriptions: Annotated[tuple[SubscriptionLine, ...], Field(max_length=50)] = ()
    invoices: Annotated[tuple[InvoiceLine, ...], Field(max_length=200)] = ()
