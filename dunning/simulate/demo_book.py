"""A realistic, seeded book for ``dunning demo``, built as a :class:`Scenario`.

Markets with their own zones, locales and currencies; monthly and yearly plans; a renewal charge
per subscription and period, about one in eleven of which fails with a mix of soft, weak, hard
and needs-a-new-card declines; cards that expire soon; customers who update their card after the
first email, pay some other way, or cancel; a few lost gateway answers; a few former customers
whose tokens reach the end of retention. Same seed, same book.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dunning.simulate import demo_events as ev
from dunning.simulate.scenario import (
    CustomerSpec,
    PaymentMethodSpec,
    Scenario,
    SubscriptionSpec,
)

START = datetime(2026, 1, 1, tzinfo=UTC)

# locale, time zone, currency, units of the currency per EUR (prices and the report), weight
MARKETS = [
    ("en", "Europe/London", "GBP", 0.85, 18),
    ("en", "America/New_York", "USD", 1.1, 22),
    ("en", "America/Los_Angeles", "USD", 1.1, 8),
    ("da", "Europe/Copenhagen", "DKK", 7.5, 16),
    ("en", "Europe/Berlin", "EUR", 1.0, 14),
    ("en", "Europe/Paris", "EUR", 1.0, 8),
    ("en", "Europe/Stockholm", "SEK", 11.0, 6),
    ("en", "Australia/Sydney", "AUD", 1.6, 8),
]
RATES = {currency: rate for _, _, currency, rate, _ in MARKETS}
PLANS = [  # name, EUR price in cents, interval, weight
    ("basic-monthly", 900, "month", 35),
    ("pro-monthly", 2900, "month", 40),
    ("team-monthly", 9900, "month", 15),
    ("pro-yearly", 29000, "year", 10),
]
NAMES = ["Ana", "Bo", "Chen", "Dana", "Emil", "Fatima", "Gustav", "Hana", "Ivan", "Jonas",
         "Kirsten", "Luca", "Maja", "Noah", "Olga", "Pierre", "Sofia", "Yuki"]  # fmt: skip
EXPIRING_SOON = 0.05
BACKUP_CARD = 0.08
FORMER_CUSTOMERS = 0.01


@dataclass
class Book:
    """The scenario under construction and what the generator knows about each customer."""

    start: datetime
    end: datetime
    rng: random.Random
    customers: list[CustomerSpec] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)


def _pick(rng: random.Random, table: list[Any]) -> Any:
    return rng.choices(table, weights=[row[-1] for row in table])[0]


def _price(cents_eur: int, rate: float) -> int:
    return max(100, round(cents_eur * rate / 100) * 100)


def _card(rng: random.Random, card_id: str, *, default: bool, expires: tuple[int, int]) -> Any:
    network = rng.choices(["visa", "mastercard", "amex"], weights=[60, 35, 5])[0]
    return {
        "id": card_id,
        "network": network,
        "last4": f"{rng.randrange(10000):04d}",
        "exp_month": expires[0],
        "exp_year": expires[1],
        "default": default,
    }


def _customer(book: Book, n: int) -> None:
    rng = book.rng
    cid = f"cus_{n:05d}"
    locale, tz, currency, rate, _ = _pick(rng, MARKETS)
    plan, cents, interval, _ = _pick(rng, PLANS)
    first = rng.choice(NAMES)
    former = rng.random() < FORMER_CUSTOMERS
    expiring = not former and interval == "month" and rng.random() < EXPIRING_SOON
    if expiring:
        expires = (book.start.month, book.start.year)
        renewal = book.start + timedelta(days=31 + rng.uniform(0, 27))
    else:
        expires = (rng.randint(1, 12), book.start.year + rng.randint(1, 4))
        period = 30 if interval == "month" else 365
        renewal = book.start + timedelta(days=rng.uniform(0, period))
    cards = [_card(rng, f"pm_{n:05d}", default=True, expires=expires)]
    if rng.random() < BACKUP_CARD:
        cards.append(_card(rng, f"pm_{n:05d}_b", default=False, expires=(6, 2030)))
    sub_id = f"sub_{n:05d}"
    amount = _price(cents, rate)
    last_paid = renewal - timedelta(days=30 if interval == "month" else 365)
    if former:
        last_paid = book.start - timedelta(days=rng.uniform(700, 740))
    customer = ev.Customer(cid, sub_id, tz, amount, interval, renewal, cards, expiring)
    if not former:
        ev.plan_customer(book, customer)
    book.customers.append(
        CustomerSpec(
            id=cid,
            email=f"{first.lower()}.{n:05d}@example.com",
            name=f"{first} {n:05d}",
            locale=locale,
            timezone=tz,
            payment_methods=[PaymentMethodSpec.model_validate(c) for c in cards],
            subscriptions=[
                SubscriptionSpec(
                    id=sub_id,
                    plan=plan,
                    amount=amount,
                    currency=currency,
                    interval="year" if interval == "year" else "month",
                    status="cancelled" if former else "active",
                    last_payment_at=last_paid,
                    current_period_end=None if former else renewal,
                )
            ],
        )
    )


def build_book(*, customers: int, days: int, seed: int, start: datetime = START) -> Scenario:
    """A book of ``customers`` and what happens to it over ``days`` days, from ``seed``."""
    book = Book(start, start + timedelta(days=days), random.Random(seed))
    for n in range(1, customers + 1):
        _customer(book, n)
    # What customers would do after the end is not part of the simulation.
    events = sorted((e for e in book.events if e.at < book.end), key=lambda e: e.at)
    return Scenario(start=start, days=days, customers=book.customers, events=events)
