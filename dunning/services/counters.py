"""Prometheus counters of what charges answered: outcomes by decline class, amounts recovered.

The answers are applied in ``dunning.services.attempt_results``, inside the caller's
transaction; they are counted once it commits (:func:`dunning.store.uow.after_commit`), so a
batch rolled back and written again one by one is counted once. The core cannot import
``workers.metrics`` (it imports dramatiq), hence this module. Nothing here reads the database.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from typing import Literal

from prometheus_client import Counter
from sqlalchemy import Connection

from dunning.store.uow import after_commit

Outcome = Literal["succeeded", "declined", "unknown"]

CHARGE_OUTCOMES = Counter(
    "dunning_charge_outcomes_total",
    "Charge answers applied, by outcome and the decline class the policy gave (none on success)",
    ["outcome", "decline_class"],
)
RECOVERED_AMOUNT = Counter(
    "dunning_recovered_amount_minor_total",
    "Amounts collected by successful charges, in minor units per currency",
    ["currency"],
)


def count_charges(
    conn: Connection, answers: Iterable[tuple[Outcome, str | None, int, str]]
) -> None:
    """Count ``(outcome, decline class, amount, currency)`` answers once ``conn`` commits.

    A success adds its amount to the recovered total; ``None`` as the class is counted as
    ``none``.
    """
    outcomes: Tally[tuple[str, str]] = Tally()
    recovered: Tally[str] = Tally()
    for outcome, decline_class, amount, currency in answers:
        outcomes[outcome, decline_class or "none"] += 1
        if outcome == "succeeded":
            recovered[currency] += amount
    if outcomes:
        after_commit(conn, lambda: _add(outcomes, recovered))


OVERPAYMENTS = Counter(
    "dunning_overpayments_total",
    "Charges that collected money not owed (an invoice already paid or no longer owed), by reason",
    ["reason"],
)
OVERPAID_AMOUNT = Counter(
    "dunning_overpaid_amount_minor_total",
    "Amounts collected that are not owed and wait for a refund, in minor units per currency",
    ["currency"],
)


def count_overpayments(conn: Connection, found: Iterable[tuple[str, int, str]]) -> None:
    """Count ``(reason, amount, currency)`` overpayments once ``conn`` commits."""
    reasons: Tally[str] = Tally()
    amounts: Tally[str] = Tally()
    for reason, amount, currency in found:
        reasons[reason] += 1
        amounts[currency] += amount
    if reasons:
        after_commit(conn, lambda: _add_overpayments(reasons, amounts))


def _add_overpayments(reasons: Tally[str], amounts: Tally[str]) -> None:
    for reason, n in reasons.items():
        OVERPAYMENTS.labels(reason).inc(n)
    for currency, amount in amounts.items():
        OVERPAID_AMOUNT.labels(currency).inc(amount)


def _add(outcomes: Tally[tuple[str, str]], recovered: Tally[str]) -> None:
    for (outcome, decline_class), n in outcomes.items():
        CHARGE_OUTCOMES.labels(outcome, decline_class).inc(n)
    for currency, amount in recovered.items():
        RECOVERED_AMOUNT.labels(currency).inc(amount)
