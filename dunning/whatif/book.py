"""The book a what-if replays: each invoice from its first failed charge, and its customer.

A :class:`Book` comes from an import file (its invoices in dunning) or from the database (open
invoices and those that failed recently, :mod:`dunning.whatif.database`). :func:`scenario`
turns some of its invoices into a simulation scenario: the customers with their cards and
subscriptions as they were before the failure, and one ``payment_failed`` event per invoice at
the time it really failed, with the decline it really had.

A copy carries what the pipeline needs and no more: no email address, name or gateway token
of a customer leaves the book (emails go nowhere in a replay anyway).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from dunning.errors import ConfigError
from dunning.imports.checks import LineError, parse_line
from dunning.imports.lines import CustomerLine
from dunning.policy.types import Decline
from dunning.simulate.scenario import (
    CustomerSpec,
    DeclineSpec,
    PaymentFailed,
    PaymentMethodSpec,
    Scenario,
    SubscriptionSpec,
)
from dunning.whatif.model import model_class

NETWORKS = frozenset({"visa", "mastercard", "amex"})
MAX_ERRORS = 20


@dataclass(frozen=True, slots=True)
class Card:
    id: str
    network: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True, slots=True)
class Plan:
    """A subscription as the replay needs it."""

    id: str
    plan: str
    amount: int
    currency: str
    interval: str
    last_payment_at: datetime | None


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    locale: str
    timezone: str
    cards: tuple[Card, ...]
    plans: tuple[Plan, ...]


@dataclass(frozen=True, slots=True)
class Case:
    """One replayed invoice: its first failed charge, on which card, with what decline."""

    invoice_id: str
    customer_id: str
    subscription_id: str
    card_id: str
    amount: int
    currency: str
    failed_at: datetime
    decline: Decline
    decline_class: str  # the outcome model's class of the decline

    @property
    def stratum(self) -> tuple[str, str]:
        """What the sample keeps in proportion: the currency and the decline class."""
        return (self.currency, self.decline_class)


@dataclass
class Book:
    source: str
    customers: dict[str, Customer] = field(default_factory=dict)
    cases: list[Case] = field(default_factory=list)

    def add(self, customer: Customer, cases: Iterable[Case]) -> None:
        self.customers[customer.id] = customer
        self.cases.extend(cases)


def network_of(customer: Customer, card_id: str) -> str:
    return next((c.network for c in customer.cards if c.id == card_id), "unknown")


@dataclass(frozen=True, slots=True)
class Failure:
    """An invoice's first failed charge, as a book records it."""

    invoice_id: str
    subscription_id: str
    card_id: str
    amount: int
    currency: str
    failed_at: datetime
    decline: Decline


def make_case(customer: Customer, f: Failure) -> Case:
    """The case of a failure, its decline class read from the decline and the card network."""
    cls = model_class(f.decline, network_of(customer, f.card_id))
    return Case(f.invoice_id, customer.id, f.subscription_id, f.card_id, f.amount, f.currency,
                f.failed_at, f.decline, cls)  # fmt: skip


def _from_line(line: CustomerLine) -> tuple[Customer, list[Case]]:
    cards = tuple(
        Card(
            pm.id,
            pm.network if pm.network in NETWORKS else "unknown",
            pm.last4,
            pm.exp_month,
            pm.exp_year,
        )
        for pm in line.payment_methods
    )
    default = next((pm.id for pm in line.payment_methods if pm.default), None)
    default = default or (cards[0].id if cards else None)
    subs = {s.id: s for s in line.subscriptions}
    plans = tuple(
        Plan(s.id, s.plan, s.amount, s.currency, s.interval, s.last_payment_at)
        for s in line.subscriptions
    )
    customer = Customer(line.id, line.locale, line.timezone, cards, plans)
    cases = []
    for inv in line.invoices:
        card_id = subs[inv.subscription].payment_method or default
        if card_id is None:
            continue  # no card to retry: nothing a policy could change
        d = inv.decline
        decline = (
            Decline(d.decline_code, d.network_code, d.advice_code, d.network_advice_code)
            if d
            else Decline("generic_decline")
        )
        failure = Failure(inv.id, inv.subscription, card_id, inv.amount, inv.currency,
                          inv.first_failed_at, decline)  # fmt: skip
        cases.append(make_case(customer, failure))
    return customer, cases


def read_file(path: Path) -> Book:
    """The book of an import file: its customers' invoices in dunning. Any line the importer
    would refuse stops the what-if, named as the importer names it."""
    book = Book(source=str(path))
    errors: list[LineError] = []
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the book ({exc.strerror or exc})") from None
    with handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            parsed = parse_line(lineno, raw)
            if isinstance(parsed, list):
                errors.extend(parsed)
                continue
            if parsed.invoices:
                book.add(*_from_line(parsed))
    if errors:
        shown = "\n  ".join(str(e) for e in errors[:MAX_ERRORS])
        more = f"\n  ... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise ConfigError(f"{path}: the book has lines the importer refuses:\n  {shown}{more}")
    return book


def _customer_spec(customer: Customer, cases: list[Case]) -> CustomerSpec:
    failed_cards = {case.subscription_id: case.card_id for case in cases}
    default = cases[0].card_id
    return CustomerSpec(
        id=customer.id,
        email="customer@replay.invalid",
        locale=customer.locale,
        timezone=customer.timezone,
        payment_methods=[
            PaymentMethodSpec(
                id=c.id,
                network=c.network,
                last4=c.last4,
                exp_month=c.exp_month,
                exp_year=c.exp_year,
                default=c.id == default,
            )
            for c in customer.cards
        ],
        subscriptions=[
            SubscriptionSpec(
                id=p.id,
                plan=p.plan,
                amount=p.amount,
                currency=p.currency,
                interval=p.interval,
                payment_method=failed_cards.get(p.id),
                status="active",
                last_payment_at=p.last_payment_at,
            )
            for p in customer.plans
        ],
    )


def _event(case: Case) -> PaymentFailed:
    d = case.decline
    return PaymentFailed(
        at=case.failed_at,
        type="payment_failed",
        subscription=case.subscription_id,
        invoice=case.invoice_id,
        amount=case.amount,
        decline=DeclineSpec(
            decline_code=d.decline_code or "generic_decline",
            network_code=d.network_code,
            advice_code=d.advice_code,
            network_advice_code=d.network_advice_code,
        ),
    )


def by_customer(cases: Iterable[Case]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    for case in cases:
        out.setdefault(case.customer_id, []).append(case)
    return out


def span(cases: Iterable[Case], days_after: int) -> tuple[datetime, int]:
    """The replay's start (the hour of the first failure) and its length in days (until
    ``days_after`` days after the last failure)."""
    times = [case.failed_at for case in cases]
    start = min(times).replace(minute=0, second=0, microsecond=0)
    days = math.ceil((max(times) + timedelta(days=days_after) - start) / timedelta(days=1))
    return start, days


def scenario(book: Book, cases: list[Case], *, start: datetime, days: int) -> Scenario:
    """The simulation of ``cases``: their customers, and their failures as events."""
    grouped = by_customer(cases)
    customers = [_customer_spec(book.customers[cid], group) for cid, group in grouped.items()]
    events = sorted((_event(case) for case in cases), key=lambda e: e.at)
    return Scenario(start=start, days=days, customers=customers, events=list(events))


def cards_of(book: Book, cases: list[Case]) -> Iterator[tuple[Card, Customer]]:
    """Every card of the customers of ``cases``."""
    for cid in by_customer(cases):
        customer = book.customers[cid]
        for card in customer.cards:
            yield card, customer
