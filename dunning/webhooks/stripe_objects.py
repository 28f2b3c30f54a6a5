"""Stripe's customers, payment methods, subscriptions and invoices as the book's records.

Pure reads of Stripe objects, shared by ``dunning sync stripe`` and the webhooks that keep the
book current. What is kept of a card is its PaymentMethod id (the token), brand, last4 and
expiry: Stripe never sends a card number, and nothing here would store one.

- **Locale**: the first of the customer's ``preferred_locales`` whose language has email
  templates, as Stripe spells it (``da-DK``), Norwegian ``no``/``nn`` as ``nb``; none: ``en``.
- **Time zone**: Stripe customers have none. The customer's ``metadata.timezone`` when it is
  an IANA name; otherwise the zone of the address country when the whole country keeps one
  local time (DK, DE, GB, FR, JP, ...); otherwise (no address, or the US, ES, AU, ...) ``UTC``.
- **Plan and interval**: the plan is the first item's price id (what the webhooks already
  used); the amount is the sum of the items' unit amounts times quantities (0 when an item has
  no fixed price, a metered one); the interval is ``year`` for yearly prices and ``month`` for
  any shorter period (the two billing periods the policy tells apart).
- **Status**: Stripe's ``active``/``trialing`` are active, ``past_due`` is past_due,
  ``unpaid``/``paused`` are suspended, ``canceled``/``incomplete_expired`` are cancelled; an
  ``incomplete`` subscription (its first payment never went through) is not taken.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.core import get_global

from dunning.webhooks.fields import Reader, network_name
from dunning.webhooks.records import (
    BillingHint,
    CardRecord,
    CustomerRecord,
    InvoiceRecord,
    SubscriptionRecord,
)
from dunning.webhooks.stripe_detail import (
    intent_decline,
    invoice_payment,
    invoice_subscription,
    plan_summary,
)

DEFAULT_LOCALE = "en"
DEFAULT_TIMEZONE = "UTC"
TIMEZONE_KEYS = ("timezone", "time_zone")  # metadata keys read, in order
# Norwegian tags other than Bokmål's, as dunning.mail.locales aliases them (the webhooks may
# not import the mail package).
_NORWEGIAN = frozenset({"no", "nn"})

_STATUSES = {
    "active": "active",
    "trialing": "active",
    "past_due": "past_due",
    "unpaid": "suspended",
    "paused": "suspended",
    "canceled": "cancelled",
    "incomplete_expired": "cancelled",
}


def pick_locale(preferred: Sequence[Any], supported: tuple[str, ...]) -> str:
    """The first preferred locale whose language is ``supported``, as given; else ``en``.

    Norwegian tagged ``no`` (the macro-language, which Babel has no regions for) or ``nn``
    (Nynorsk) reads the ``nb`` (Bokmål) emails when ``nb`` is supported: it is given as ``nb``
    with its region (``no-NO`` -> ``nb-NO``), a tag every reader of the locale maps to ``nb``.
    """
    for tag in preferred:
        if not isinstance(tag, str) or not 2 <= len(tag) <= 16:
            continue
        language, sep, region = tag.replace("_", "-").partition("-")
        if language.lower() in _NORWEGIAN and "nb" in supported:
            tag = "nb" + sep + region
        try:
            parsed = Locale.parse(tag.replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            continue
        if parsed.language in supported:
            return tag
    return DEFAULT_LOCALE


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@cache
def country_zone(country: str) -> str | None:
    """The zone of a country that keeps one local time (``DK`` -> ``Europe/Copenhagen``)."""
    zones = get_global("territory_zones").get(country.upper(), [])
    meta = get_global("meta_zones")
    if zones and len({meta.get(z, z) for z in zones}) == 1 and zones[0] in _zones():
        return str(zones[0])
    return None


def pick_timezone(metadata: Reader | None, country: str | None) -> str:
    """``metadata.timezone`` when a real zone, else the country's single zone, else UTC."""
    for key in TIMEZONE_KEYS:
        value = metadata.opt_text(key) if metadata else None
        if value and value.strip() in _zones():
            return value.strip()
    zone = country_zone(country) if country and len(country) == 2 else None
    return zone or DEFAULT_TIMEZONE


def card_record(pm: Reader | None) -> CardRecord | None:
    """A card payment method's record; ``None`` for anything else (a bank debit, a wallet)."""
    card = pm.opt_obj("card") if pm else None
    if pm is None or card is None:
        return None
    last4, month = card.opt_text("last4"), card.opt_integer("exp_month")
    year = card.opt_integer("exp_year")
    if not (last4 and last4.isdigit() and len(last4) == 4 and month and year):
        return None
    return CardRecord(pm.text("id"), network_name(card.opt_text("brand")), last4, month, year)


def customer_record(obj: Mapping[str, Any]) -> CustomerRecord:
    """A Stripe customer (``invoice_settings.default_payment_method`` expanded or not)."""
    c = Reader(obj, "customer")
    settings = c.opt_obj("invoice_settings")
    default = settings.expanded("default_payment_method") if settings else None
    address = c.opt_obj("address")
    country = address.opt_text("country") if address else None
    return CustomerRecord(
        ref=c.text("id"),
        email=c.opt_text("email"),
        name=(c.opt_text("name") or "")[:200],
        preferred_locales=tuple(x for x in c.seq("preferred_locales") if isinstance(x, str)),
        timezone=pick_timezone(c.opt_obj("metadata"), country),
        default_card=card_record(default),
        default_card_ref=settings.opt_ref("default_payment_method") if settings else None,
        deleted=c.flag("deleted"),
    )


def subscription_record(obj: Mapping[str, Any]) -> SubscriptionRecord | None:
    """A Stripe subscription; ``None`` for an incomplete one or one without a priced item."""
    s = Reader(obj, "subscription")
    status = _STATUSES.get(s.text("status"))
    summary = plan_summary(s)
    if status is None or summary.plan is None or summary.currency is None:
        return None
    return SubscriptionRecord(
        ref=s.text("id"),
        customer_ref=s.ref("customer"),
        plan=summary.plan[:64],
        amount=summary.amount or 0,
        currency=summary.currency,
        interval=_interval(s),
        status=status,
        card=card_record(s.expanded("default_payment_method")),
        card_ref=s.opt_ref("default_payment_method"),
        current_period_end=summary.period_end,
    )


def _interval(s: Reader) -> str:
    items = s.opt_obj("items")
    for i, item in enumerate(items.seq("data") if items else []):
        row = Reader(item, f"{s.path}.items.data[{i}]")
        price = row.opt_obj("price") or row.opt_obj("plan")
        recurring = price.opt_obj("recurring") if price else None
        if recurring is None and price is not None:
            recurring = price  # the legacy plan object carries ``interval`` itself
        unit = recurring.opt_text("interval") if recurring else None
        if unit:
            return "year" if unit == "year" else "month"
    return "month"


def invoice_record(obj: Mapping[str, Any]) -> InvoiceRecord:
    """A Stripe invoice, either API shape (subscription at the top or under ``parent``)."""
    inv = Reader(obj, "invoice")
    intent, _ = invoice_payment(inv)
    transitions = inv.opt_obj("status_transitions")
    finalized = transitions.opt_unix_time("finalized_at") if transitions else None
    return InvoiceRecord(
        ref=inv.text("id"),
        customer_ref=inv.ref("customer"),
        subscription_ref=invoice_subscription(inv),
        amount=inv.amount("amount_remaining" if inv.has("amount_remaining") else "amount_due"),
        currency=inv.currency("currency"),
        status=inv.text("status"),
        attempts=inv.opt_integer("attempt_count") or 0,
        first_failed_at=finalized or inv.unix_time("created"),
        decline=intent_decline(intent),
    )


YEAR_DAYS = 300  # a billing period this long or longer is yearly


def invoice_billing(inv: Reader) -> BillingHint:
    """Plan and interval from the invoice's first priced subscription line (the price object
    of older API versions, or ``pricing.price_details.price`` and the line's period of newer
    ones); the time zone of ``customer_address.country`` when that country keeps one."""
    address = inv.opt_obj("customer_address")
    country = address.opt_text("country") if address else None
    zone = country_zone(country) if country and len(country) == 2 else None
    lines = inv.opt_obj("lines")
    for i, raw in enumerate(lines.seq("data") if lines else []):
        line = Reader(raw, f"{inv.path}.lines.data[{i}]")
        price = line.opt_obj("price") or line.opt_obj("plan")
        pricing = line.opt_obj("pricing")
        details = pricing.opt_obj("price_details") if pricing else None
        plan = (price.opt_text("id") if price else None) or (
            details.opt_ref("price") if details else None
        )
        if plan:
            return BillingHint(plan[:64], _line_interval(line, price), zone)
    return BillingHint(None, None, zone)


def _line_interval(line: Reader, price: Reader | None) -> str | None:
    source = (price.opt_obj("recurring") or price) if price else None
    unit = source.opt_text("interval") if source else None
    if unit:
        return "year" if unit == "year" else "month"
    period = line.opt_obj("period")
    start = period.opt_integer("start") if period else None
    end = period.opt_integer("end") if period else None
    if start is None or end is None or end <= start:
        return None
    return "year" if end - start >= YEAR_DAYS * 86400 else "month"
