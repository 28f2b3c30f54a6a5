"""The figures of one policy's replay, and what separates two policies.

Everything is counted from the replayed invoices' outcomes, each weighted by how many invoices
of the book it stands for (1 when every invoice was replayed). With a sample, the margins are
95 % intervals of the stratified estimate; the difference between two policies is estimated
invoice by invoice on the same sample with the same draws (a paired estimate), which is far
tighter than the two margins apart.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dunning.whatif.book import Case
from dunning.whatif.replay import InvoiceOutcome
from dunning.whatif.sample import Sample

Z95 = 1.96


@dataclass
class Money:
    """One currency, in minor units (estimated for the book)."""

    failed: float = 0.0
    recovered: float = 0.0
    invoices: float = 0.0
    recovered_invoices: float = 0.0


@dataclass
class PolicyFigures:
    name: str
    invoices: float = 0.0
    recovered: float = 0.0
    money: dict[str, Money] = field(default_factory=dict)
    by_class: dict[str, tuple[float, float]] = field(default_factory=dict)  # (invoices, recov.)
    days: list[tuple[float, float]] = field(default_factory=list)  # (days to recovery, weight)
    retries: float = 0.0
    emails: dict[str, float] = field(default_factory=dict)
    suspended: float = 0.0
    stopped_by_limit: float = 0.0
    peaks: dict[str, tuple[int, int]] = field(default_factory=dict)
    margin: float = 0.0  # 95 % margin of the recovery rate by count (0 for a full replay)

    @property
    def rate(self) -> float:
        return self.recovered / self.invoices if self.invoices else 0.0

    def days_quantile(self, q: float) -> float | None:
        """The weighted ``q`` quantile of the days from the failure to the payment."""
        if not self.days:
            return None
        ordered = sorted(self.days)
        total = sum(w for _, w in ordered)
        running = 0.0
        for value, weight in ordered:
            running += weight
            if running >= q * total - 1e-9:
                return value
        return ordered[-1][0]

    def recovered_by_day(self, days: int) -> list[float]:
        """Share of the invoices recovered within 0, 1, ... ``days`` days of their failure."""
        out = [0.0] * (days + 1)
        for value, weight in self.days:
            out[min(int(value) + 1, days)] += weight
        running, shares = 0.0, []
        for value in out:
            running += value
            shares.append(running / self.invoices if self.invoices else 0.0)
        return shares


def _stratified_margin(
    cases: Sequence[Case], sample: Sample, value: Callable[[Case], float]
) -> float:
    """95 % margin of the book-wide mean of ``value`` estimated from the stratified sample."""
    if sample.complete:
        return 0.0
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for case in cases:
        groups[case.stratum].append(value(case))
    variance = 0.0
    for key, values in groups.items():
        size, n = sample.strata[key]
        if n < 2 or n >= size:
            continue
        mean = sum(values) / n
        s2 = sum((v - mean) ** 2 for v in values) / (n - 1)
        variance += (size / sample.total) ** 2 * s2 / n * (1 - n / size)
    return Z95 * math.sqrt(variance)


def compute(
    name: str, cases: Sequence[Case], outcomes: dict[str, InvoiceOutcome], sample: Sample,
    peaks: dict[str, tuple[int, int]],
) -> PolicyFigures:  # fmt: skip
    """The figures of one policy from its outcomes (``invoice id -> outcome``)."""
    f = PolicyFigures(name, peaks=peaks)
    by_class: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for case in cases:
        o, w = outcomes[case.invoice_id], sample.weights[case.invoice_id]
        money = f.money.setdefault(case.currency, Money())
        money.failed += w * case.amount
        money.invoices += w
        f.invoices += w
        by_class[case.decline_class][0] += w
        f.retries += w * o.retries
        f.suspended += w * o.suspended
        f.stopped_by_limit += w * (o.stop_reason == "network_limit")
        for kind, n in o.emails.items():
            f.emails[kind] = f.emails.get(kind, 0.0) + w * n
        if o.recovered:
            f.recovered += w
            money.recovered += w * case.amount
            money.recovered_invoices += w
            by_class[case.decline_class][1] += w
            f.days.append((o.days_to_recovery or 0.0, w))
    f.by_class = {k: (v[0], v[1]) for k, v in sorted(by_class.items())}
    f.money = dict(sorted(f.money.items()))
    f.margin = _stratified_margin(cases, sample, lambda c: float(outcomes[c.invoice_id].recovered))
    return f


@dataclass(frozen=True)
class Difference:
    """Policy B minus policy A, per invoice of the book: recovery rate and amounts."""

    rate: float
    rate_margin: float
    amounts: dict[str, tuple[float, float]]  # currency -> (recovered B - A, 95 % margin)


def difference(
    cases: Sequence[Case],
    sample: Sample,
    a: dict[str, InvoiceOutcome],
    b: dict[str, InvoiceOutcome],
) -> Difference:
    """The paired difference of two policies replayed on the same sample."""

    def delta(case: Case) -> float:
        return float(b[case.invoice_id].recovered) - float(a[case.invoice_id].recovered)

    total = sum(sample.weights[c.invoice_id] * delta(c) for c in cases) / sample.total
    amounts = {}
    for currency in sorted({c.currency for c in cases}):

        def money(case: Case, cur: str = currency) -> float:
            return delta(case) * case.amount if case.currency == cur else 0.0

        change = sum(sample.weights[c.invoice_id] * money(c) for c in cases)
        margin = _stratified_margin(cases, sample, money) * sample.total
        amounts[currency] = (change, margin)
    return Difference(total, _stratified_margin(cases, sample, delta), amounts)
