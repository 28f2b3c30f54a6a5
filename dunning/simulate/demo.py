"""``dunning demo``: a generated book through the real pipeline under three policies, and what
dunning recovered.

The book (``demo_book``) is a :class:`Scenario`; each policy's run goes through the same
simulation as ``dunning simulate``, on the embedded default, with the what-if outcome model
answering the retries (``demo_run``). The default policy's run keeps its database and outbox
under ``var/demo/``; the figures are counted from each run's output lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from dunning.simulate import report as html_report
from dunning.simulate.demo_book import RATES, build_book
from dunning.simulate.demo_next import next_steps
from dunning.simulate.demo_run import demo_policies, run_policies
from dunning.simulate.figures import Figures, compute
from dunning.simulate.words import EMAIL_KINDS, STOP_REASONS, money, words
from dunning.whatif.params import load_params
from dunning.whatif.pool import cores

log = logging.getLogger(__name__)
WORKDIR = Path("var/demo")
LOST = "unpaid, retries stopped (the card must change, retries used up, or suspended)"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} days"


def _eur(f: Figures, field: str) -> float:
    return float(sum(getattr(m, field) / RATES[cur] for cur, m in f.money.items()))


def money_table(f: Figures) -> Table:
    """Per currency: failed = recovered + lost + still retrying + cancelled."""
    table = Table(
        "currency",
        "failed",
        "recovered",
        "lost",
        "retrying",
        "cancelled",
        "recovered, by amount",
        title="Recovered revenue (default policy)",
        caption=f"failed = recovered + lost + retrying + cancelled. lost: {LOST}; retrying: "
        "unpaid, a retry still scheduled at the end; cancelled: the customer cancelled during "
        "dunning (the invoice is void)",
    )
    for cur, m in f.money.items():
        table.add_row(
            cur,
            *(money(v, cur) for v in (m.failed, m.recovered, m.lost, m.retrying, m.cancelled)),
            _pct(m.recovered, m.failed),
        )
    values = [_eur(f, k) for k in ("failed", "recovered", "lost", "retrying", "cancelled")]
    table.add_row(
        "all, in EUR", *(money(v, "EUR") for v in values), _pct(values[1], values[0]), style="bold"
    )
    return table


def funnel(f: Figures) -> list[tuple[str, int]]:
    """The dunning funnel: failed -> retried -> how each failed invoice ended."""
    return [
        ("payment failed", f.failed),
        ("retried at least once", f.retried),
        ("recovered by a retry", f.recovered_by["retry"]),
        ("recovered by a new card", f.recovered_by["new card"]),
        ("paid elsewhere", f.recovered_by["elsewhere"]),
        ("suspended, unpaid", f.suspended_unpaid),
        ("cancelled during dunning", f.cancelled),
        ("written off", f.written_off),
        ("still in dunning", f.in_dunning),
    ]


def _head(f: Figures) -> Table:
    head = Table("figure", "value", title="Dunning (default policy)")
    head.add_row("invoices that failed", str(f.failed))
    eur = _eur(f, "recovered"), _eur(f, "failed")
    head.add_row(
        "recovered, by count", f"{f.recovered} of {f.failed} ({_pct(f.recovered, f.failed)})"
    )
    head.add_row(
        "recovered, by amount (EUR)",
        f"{money(eur[0], 'EUR')} of {money(eur[1], 'EUR')} ({_pct(*eur)})",
    )
    head.add_row("time to recovery, median", _days(f.median_days))
    head.add_row("time to recovery, p90", _days(f.percentile_days(0.9)))
    head.add_row("subscriptions suspended", str(f.suspended))
    head.add_row("... reactivated by a later payment", str(f.reactivated))
    head.add_row("charge attempts (the failed ones included)", str(f.attempts))
    head.add_row("cards updated by customers", str(f.card_updates))
    head.add_row("card tokens deleted: replaced cards", str(f.tokens_purged["card_removed"]))
    head.add_row(
        "card tokens deleted: 2 years after the last payment", str(f.tokens_purged["retention"])
    )
    head.caption = (
        "A replaced card's token is deleted at the gateway at once; a card "
        "unused two years after its customer's last payment, by the retention rule"
    )
    return head


def _detail_tables(f: Figures) -> list[Table]:
    flow = Table("stage", "invoices", "of failed", title="Dunning funnel (default policy)")
    for stage, n in funnel(f):
        flow.add_row(stage, str(n), _pct(n, f.failed))
    mails = Table("email", "sent", title="Emails by kind (default policy)")
    for kind, n in sorted(f.emails.items(), key=lambda kv: -kv[1]):
        mails.add_row(words(EMAIL_KINDS, kind), str(n))
    stops = Table("why", "invoices", title="Why retries stopped (default policy)")
    for reason, n in f.stop_reasons.most_common():
        stops.add_row(words(STOP_REASONS, reason), str(n))
    return [_head(f), money_table(f), flow, mails, stops]


def compare_table(names: list[str], all_figures: list[Figures]) -> Table:
    """The policies side by side, on the same book and the same customers' actions."""
    t = Table(
        "",
        *names,
        title="The same book under three policies",
        caption="same customers, same cards, same actions; retries answered by the "
        "outcome model (docs/whatif.md)",
    )
    rows: list[tuple[str, Callable[[Figures], str]]] = [
        ("recovered, by count", lambda f: f"{f.recovered} ({_pct(f.recovered, f.failed)})"),
        (
            "recovered, by amount (EUR)",
            lambda f: (
                f"{money(_eur(f, 'recovered'), 'EUR')} "
                f"({_pct(_eur(f, 'recovered'), _eur(f, 'failed'))})"
            ),
        ),
        ("  by a retry", lambda f: str(f.recovered_by["retry"])),
        ("  by a new card", lambda f: str(f.recovered_by["new card"])),
        ("  paid elsewhere", lambda f: str(f.recovered_by["elsewhere"])),
        ("time to recovery, median", lambda f: _days(f.median_days)),
        ("charge attempts", lambda f: str(f.attempts)),
        ("emails sent", lambda f: str(sum(f.emails.values()))),
        ("subscriptions suspended", lambda f: str(f.suspended)),
    ]
    for label, cell in rows:
        t.add_row(label, *(cell(f) for f in all_figures))
    return t


@dataclass(frozen=True)
class DemoRun:
    customers: int
    days: int
    seed: int
    start: datetime
    workdir: Path
    workers: int


def _simulate(console: Console, run: DemoRun) -> list[Figures]:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f} %"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("building the book", total=None)
        scenario = build_book(
            customers=run.customers, days=run.days, seed=run.seed, start=run.start
        )
        policies = demo_policies()
        at_once = min(run.workers, len(policies))
        bar.update(task, description=f"simulating {len(policies)} policies, {at_once} at a time")
        outputs = run_policies(
            scenario,
            policies,
            params=load_params(),
            seed=run.seed,
            keep=run.workdir,
            workers=run.workers,
            progress=lambda i, n: bar.update(task, completed=i, total=n),
        )
    return [compute(scenario, lines, RATES) for lines in outputs]


def run_demo(
    *,
    customers: int,
    days: int,
    report: Path | None,
    seed: int,
    workdir: Path = WORKDIR,
    start: datetime | None = None,
    workers: int | None = None,
) -> None:
    """Generate ``customers`` customers (seeded), simulate ``days`` days up to today under the
    default policy and two others, print the figures and what to explore next."""
    console, err = Console(), Console(stderr=True)
    if start is None:  # the simulation ends today, so `dunning run` carries on from it
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=days)
    began = time.monotonic()
    run = DemoRun(customers, days, seed, start, workdir, workers or cores())
    figures = _simulate(err, run)
    console.print(
        f"[bold]dunning demo[/]: {customers} customers, {days} days from {start:%Y-%m-%d}, "
        f"seed {seed} ({time.monotonic() - began:.0f} s); kept in {workdir}/",
        highlight=False,
    )
    for table in _detail_tables(figures[0]):
        console.print(table)
    names = [p.name for p in demo_policies()]
    console.print(compare_table(names, figures))
    if report is not None:
        write_report(figures, names, report, seed=seed)
        console.print(f"report written to {report}")
    next_steps(console, workdir, report=report)


def write_report(figures: list[Figures], names: list[str], path: Path, *, seed: int) -> None:
    """The same figures as a self-contained HTML page with inline SVG charts."""
    tables = [*_detail_tables(figures[0]), compare_table(names, figures)]
    compared = list(zip(names, figures, strict=True)) if len(figures) > 1 else []
    page = html_report.render(
        figures[0], funnel(figures[0]), seed=seed, tables=tables, compared=compared
    )
    path.write_text(page, encoding="utf-8")
    log.info("demo report written to %s", path)
