"""What a subscription business wants to know from a simulated timeline: recovered revenue,
recovery rate, emails, suspensions, time to recovery, why retries stopped, the funnel.

Everything is counted from the simulation's output lines (the audit log) and the scenario's
own invoices; nothing is modelled a second time.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dunning.simulate.scenario import Scenario


@dataclass(frozen=True, slots=True)
class Money:
    """One currency, in minor units: what failed, what was recovered, what is lost (unpaid,
    retries stopped), what is unpaid with retries still ahead, and what was voided because the
    subscription was cancelled. ``failed`` is the sum of the other four."""

    failed: int = 0
    recovered: int = 0
    lost: int = 0
    retrying: int = 0
    cancelled: int = 0

    @property
    def rate(self) -> float:
        return self.recovered / self.failed if self.failed else 0.0


@dataclass
class Figures:
    start: datetime
    end: datetime
    customers: int
    subscriptions: int
    attempts: int
    emails: dict[str, int]
    failed: int = 0  # invoices that entered dunning
    retried: int = 0  # ... of which at least one merchant retry was made
    recovered: int = 0
    recovered_by: Counter[str] = field(default_factory=Counter)  # retry | new card | elsewhere
    suspended_unpaid: int = 0  # still unpaid, subscription suspended at the end of the window
    cancelled: int = 0  # void: the subscription was cancelled during dunning
    written_off: int = 0  # made uncollectible at the end of the window
    in_dunning: int = 0  # still unpaid, window still running
    suspended: int = 0  # subscriptions suspended (some paid and were reactivated later)
    reactivated: int = 0
    money: dict[str, Money] = field(default_factory=dict)
    stop_reasons: Counter[str] = field(default_factory=Counter)
    days_to_recovery: list[float] = field(default_factory=list)
    recovered_by_day: list[float] = field(default_factory=list)  # cumulative, in EUR
    card_updates: int = 0
    tokens_purged: Counter[str] = field(default_factory=Counter)  # by reason

    @property
    def recovery_rate(self) -> float:
        return self.recovered / self.failed if self.failed else 0.0

    def percentile_days(self, q: float) -> float | None:
        """Nearest-rank percentile of the days from the first failure to payment."""
        if not self.days_to_recovery:
            return None
        ordered = sorted(self.days_to_recovery)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    @property
    def median_days(self) -> float | None:
        return statistics.median(self.days_to_recovery) if self.days_to_recovery else None


@dataclass
class _Trace:
    """Per invoice and subscription, what the lines say happened."""

    opened: dict[str, datetime] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    paid_at: dict[str, datetime] = field(default_factory=dict)
    paid_by: dict[str, str] = field(default_factory=dict)
    retried: set[str] = field(default_factory=set)
    suspended: set[str] = field(default_factory=set)
    reactivated: set[str] = field(default_factory=set)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _read(f: Figures, body: Sequence[Mapping[str, Any]]) -> _Trace:
    t = _Trace()
    for line in body:
        kind = line["kind"]
        if kind == "invoice_status":
            t.status[line["invoice"]] = line["to"]
            if line["from"] is None:
                t.opened[line["invoice"]] = _at(line["at"])
            elif line["to"] == "paid":
                t.paid_at[line["invoice"]] = _at(line["at"])
        elif kind == "charge_attempt":
            if line["attempt"] >= 2 and line["initiator"] == "merchant":
                t.retried.add(line["invoice"])
            if line["result"] == "succeeded":
                by = "retry" if line["initiator"] == "merchant" else "new card"
                t.paid_by[line["invoice"]] = by
        elif kind == "subscription_status" and line["to"] == "suspended":
            t.suspended.add(line["subscription"])
        elif kind == "subscription_status" and line["from"] == "suspended":
            t.reactivated.add(line["subscription"])
        elif kind == "retry_stopped":
            f.stop_reasons[line["reason"]] += 1
        elif kind == "token_purged":
            f.tokens_purged[line["reason"]] += 1
    f.card_updates = sum(1 for line in body if line["kind"] == "card_added")
    return t


def _outcome(t: _Trace, invoice: str, subscription: str) -> str:
    state = t.status[invoice]
    if state == "paid":
        return "recovered"
    if state == "void":
        return "cancelled"
    if state == "uncollectible":
        return "written_off"
    return "suspended_unpaid" if subscription in t.suspended else "in_dunning"


def compute(
    scenario: Scenario, lines: Sequence[Mapping[str, Any]], rates: Mapping[str, float]
) -> Figures:
    """The figures of one simulated timeline; ``rates`` are units of each currency per EUR."""
    *body, summary = lines
    currency = {s.id: s.currency for c in scenario.customers for s in c.subscriptions}
    invoices = {
        e.invoice: (e.amount, e.subscription) for e in scenario.events if e.type == "payment_failed"
    }
    f = Figures(
        start=scenario.start,
        end=_at(summary["at"]),
        customers=len(scenario.customers),
        subscriptions=len(currency),
        attempts=int(summary["attempts"]),
        emails=dict(summary["emails"]),
    )
    t = _read(f, body)
    sums: dict[str, Counter[str]] = {}
    daily = [0.0] * ((f.end - f.start).days + 1)
    for invoice, first in t.opened.items():
        amount, sub = invoices[invoice]
        cur = currency[sub]
        outcome = _outcome(t, invoice, sub)
        setattr(f, outcome, getattr(f, outcome) + 1)
        f.failed += 1
        f.retried += invoice in t.retried
        money = sums.setdefault(cur, Counter())
        money["failed"] += amount
        if outcome == "recovered":
            paid = t.paid_at[invoice]
            f.recovered_by[t.paid_by.get(invoice, "elsewhere")] += 1
            f.days_to_recovery.append((paid - first).total_seconds() / 86400)
            money["recovered"] += amount
            daily[min((paid - f.start).days, len(daily) - 1)] += amount / rates[cur] / 100
        elif outcome == "cancelled":
            money["cancelled"] += amount
        else:
            money["unpaid"] += amount
    f.suspended, f.reactivated = len(t.suspended), len(t.reactivated)
    total = 0.0
    for value in daily:
        total += value
        f.recovered_by_day.append(round(total, 2))
    for cur, m in sorted(sums.items()):
        lost = int(summary["lost"].get(cur, 0))
        f.money[cur] = Money(m["failed"], m["recovered"], lost, m["unpaid"] - lost, m["cancelled"])
    return f
