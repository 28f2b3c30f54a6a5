"""A scenario's references, checked before it runs: every id it names is in its book, and
every id in the book is named once.

Without this a misspelt subscription id surfaced days into the simulated run as a database
error; now the scenario is refused up front with the path of each problem.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the scenario module calls this one while it validates
    from dunning.simulate.scenario import Scenario


def _book_problems(s: Scenario) -> tuple[list[str], set[str], set[str], set[str]]:
    """Duplicate ids and subscriptions on another customer's card; the ids of the book."""
    problems: list[str] = []
    customers: set[str] = set()
    cards: set[str] = set()
    subs: set[str] = set()

    def once(ids: set[str], key: str, where: str, kind: str) -> None:
        if key in ids:
            problems.append(f"{where}.id: {kind} {key!r} appears twice")
        ids.add(key)

    for i, cust in enumerate(s.customers):
        once(customers, cust.id, f"customers[{i}]", "customer")
        own = {pm.id for pm in cust.payment_methods}
        for j, pm in enumerate(cust.payment_methods):
            once(cards, pm.id, f"customers[{i}].payment_methods[{j}]", "payment method")
        for j, sub in enumerate(cust.subscriptions):
            where = f"customers[{i}].subscriptions[{j}]"
            once(subs, sub.id, where, "subscription")
            if sub.payment_method is not None and sub.payment_method not in own:
                problems.append(
                    f"{where}.payment_method: {sub.payment_method!r} is not one of this "
                    "customer's payment_methods"
                )
    return problems, customers, cards, subs


def reference_problems(s: Scenario) -> list[str]:
    """Every reference of ``s`` that names nothing, as ``path: message`` (empty when fine)."""
    problems, customers, cards, subs = _book_problems(s)
    opened: dict[str, tuple[str, datetime]] = {}  # invoice -> (subscription, first failure)
    for k, ev in enumerate(s.events):
        if ev.type == "payment_failed":
            first = opened.get(ev.invoice)
            if first is not None and first[0] != ev.subscription:
                problems.append(
                    f"events[{k}].invoice: {ev.invoice!r} is already opened for subscription "
                    f"{first[0]!r}"
                )
            elif first is None or ev.at < first[1]:
                opened[ev.invoice] = (ev.subscription, ev.at)

    ids = {"subscription": subs, "customer": customers, "payment_method": cards}
    for k, ev in enumerate(s.events):
        field = _NAMES.get(ev.type)
        if field is not None and getattr(ev, field) not in ids[field]:
            kind = field.replace("_", " ")
            problems.append(
                f"events[{k}].{field}: no {kind} {getattr(ev, field)!r} in the scenario's customers"
            )
        if ev.type == "payment_succeeded":
            first = opened.get(ev.invoice)
            if first is None or first[1] > ev.at:
                problems.append(
                    f"events[{k}].invoice: no payment_failed event opens {ev.invoice!r} "
                    "at or before this one"
                )
    return problems


# The book id each kind of event names.
_NAMES = {
    "payment_failed": "subscription",
    "subscription_cancelled": "subscription",
    "card_updated": "customer",
    "card_auto_updated": "payment_method",
}
