"""A comparison as people read it (a table, one column per policy) and as scripts read it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from rich.table import Table

from dunning.simulate.words import DECLINE_CLASSES, EMAIL_KINDS, money, words
from dunning.whatif.compare import Comparison
from dunning.whatif.figures import PolicyFigures

LIMITS = "Visa allows 20 reattempts in 30 days, Mastercard 35 attempts (10 in 24 h)"


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} days"


def headline(c: Comparison) -> str:
    s = c.sample
    what = (
        f"all {s.total:,} invoices"
        if s.complete
        else f"a stratified sample of {len(s.cases):,} of {s.total:,} invoices "
        "(by currency and decline class; figures scaled to the whole book, ± is a 95 % margin)"
    )
    return (
        f"{what}, from {c.start:%Y-%m-%d %H:%M} UTC for {c.days} days; "
        f"model {c.model}; seed {c.seed}; {c.seconds:.0f} s"
    )


Row = tuple[str, Callable[[PolicyFigures], str]]


def _recovered(c: Comparison) -> list[Row]:
    rows: list[Row] = [
        ("invoices", lambda f: _n(f.invoices)),
        ("recovered, by count", _by_count),
    ]
    for cur, m in c.figures[0].money.items():
        label = f"{cur}, by amount (of {money(m.failed, cur)})"
        rows.append((label, partial(_by_amount, cur=cur)))
    for cls in c.figures[0].by_class:
        label = f"  {words(DECLINE_CLASSES, cls)}"
        rows.append((label, partial(_class_rate, cls=cls)))
    return rows


def _by_count(f: PolicyFigures) -> str:
    margin = f" ± {100 * f.margin:.1f}" if f.margin else ""
    return f"{_n(f.recovered)} ({_pct(f.recovered, f.invoices)}{margin})"


def _class_rate(f: PolicyFigures, cls: str) -> str:
    invoices, recovered = f.by_class[cls]
    return _pct(recovered, invoices)


def _emails(f: PolicyFigures, kind: str) -> str:
    return _n(f.emails.get(kind, 0))


def _by_amount(f: PolicyFigures, cur: str) -> str:
    m = f.money[cur]
    return f"{money(m.recovered, cur)} ({_pct(m.recovered, m.failed)})"


def _costs(c: Comparison) -> list[Row]:
    rows: list[Row] = [
        ("days to recovery, median", lambda f: _days(f.days_quantile(0.5))),
        ("days to recovery, p90", lambda f: _days(f.days_quantile(0.9))),
        ("retries made", lambda f: f"{_n(f.retries)} ({f.retries / (f.invoices or 1):.1f} each)"),
        ("most attempts, one card, 30 days", _peaks),
        ("retries stopped by a network limit", lambda f: _n(f.stopped_by_limit)),
        ("subscriptions suspended", lambda f: _n(f.suspended)),
        ("dunning emails sent", lambda f: _n(sum(f.emails.values()))),
    ]
    order = list(EMAIL_KINDS)
    kinds = sorted({k for f in c.figures for k in f.emails}, key=lambda k: (k not in order, k))
    kinds.sort(key=lambda k: order.index(k) if k in order else len(order))
    for kind in kinds:
        rows.append((f"  {words(EMAIL_KINDS, kind)}", partial(_emails, kind=kind)))
    return rows


def _peaks(f: PolicyFigures) -> str:
    return ", ".join(f"{net} {month}" for net, (month, _) in sorted(f.peaks.items())) or "-"


def _table(c: Comparison, title: str, rows: list[Row], caption: str | None = None) -> Table:
    t = Table("", *(p.name for p in c.policies), title=title, caption=caption)
    for label, cell in rows:
        t.add_row(label, *(cell(f) for f in c.figures))
    return t


def _against(c: Comparison) -> Table:
    first = c.policies[0].name
    t = Table("", *(p.name for p in c.policies[1:]), title=f"Against {first}, invoice by invoice")
    t.add_row(
        "recovery rate",
        *(
            f"{100 * d.rate:+.1f} pp" + (f" ± {100 * d.rate_margin:.1f}" if d.rate_margin else "")
            for d in c.differences
        ),
    )
    for cur in c.figures[0].money:
        cells = []
        for d in c.differences:
            change, margin = d.amounts[cur]
            sign = "+" if change >= 0 else "-"
            extra = f" ± {money(margin, cur)}" if margin else ""
            cells.append(f"{sign}{money(abs(change), cur)}{extra}")
        t.add_row(f"recovered {cur}", *cells)
    return t


def tables(c: Comparison) -> list[Table]:
    """What each policy recovered, what it took, and each policy against the first."""
    out = [
        _table(c, "Recovered by retries", _recovered(c)),
        _table(c, "What it took", _costs(c), caption=LIMITS),
    ]
    if c.differences:
        out.append(_against(c))
    return out


def _figures_json(f: PolicyFigures) -> dict[str, Any]:
    return {
        "invoices": round(f.invoices, 2),
        "recovered": round(f.recovered, 2),
        "recovery_rate": round(f.rate, 4),
        "recovery_rate_margin": round(f.margin, 4),
        "money": {
            cur: {
                "failed": round(m.failed),
                "recovered": round(m.recovered),
                "rate": round(m.recovered / m.failed, 4) if m.failed else 0.0,
            }
            for cur, m in f.money.items()
        },
        "by_decline_class": {
            cls: {"invoices": round(n, 2), "recovered": round(r, 2)}
            for cls, (n, r) in f.by_class.items()
        },
        "days_to_recovery": {"median": f.days_quantile(0.5), "p90": f.days_quantile(0.9)},
        "retries": round(f.retries, 2),
        "card_peaks": {
            net: {"attempts_30d": m, "attempts_24h": d} for net, (m, d) in f.peaks.items()
        },
        "stopped_by_network_limit": round(f.stopped_by_limit, 2),
        "subscriptions_suspended": round(f.suspended, 2),
        "emails": {k: round(v, 2) for k, v in sorted(f.emails.items())},
    }


def as_json(c: Comparison) -> dict[str, Any]:
    """The comparison for scripts: every figure of every policy, and the differences."""
    s = c.sample
    return {
        "book": c.book,
        "seed": c.seed,
        "model": c.model,
        "start": c.start.isoformat().replace("+00:00", "Z"),
        "days": c.days,
        "invoices": s.total,
        "replayed": len(s.cases),
        "sampled": not s.complete,
        "seconds": round(c.seconds, 1),
        "policies": [
            {"name": p.name, "overrides": dict(p.overrides), **_figures_json(f)}
            for p, f in zip(c.policies, c.figures, strict=True)
        ],
        "against_first": [
            {
                "policy": p.name,
                "recovery_rate": round(d.rate, 4),
                "recovery_rate_margin": round(d.rate_margin, 4),
                "recovered": {
                    cur: {"change": round(a), "margin": round(m)}
                    for cur, (a, m) in d.amounts.items()
                },
            }
            for p, d in zip(c.policies[1:], c.differences, strict=True)
        ],
    }
