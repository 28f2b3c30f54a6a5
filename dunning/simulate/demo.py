"""``dunning demo``: a generated book through the real pipeline, and what dunning recovered.

The book (``demo_book``) is a :class:`Scenario`; it runs through :func:`runner.run` exactly as
``dunning simulate`` runs a scenario file, on the embedded default (SQLite, the stub broker, the
file outbox, the sandbox gateway). The figures are counted from the output lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dunning.simulate import report as html_report
from dunning.simulate import runner
from dunning.simulate.demo_book import RATES, build_book
from dunning.simulate.figures import Figures, compute

log = logging.getLogger(__name__)


def amount(minor: float) -> str:
    """Minor units as ``1,234.50``."""
    return f"{minor / 100:,.2f}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} days"


@contextmanager
def _quiet_pipeline() -> Iterator[None]:
    """The book scripts gateway timeouts on purpose; the pipeline's warnings about them would
    only break up the progress bar. Errors still show."""
    logger = logging.getLogger("dunning")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def simulate_book(
    *, customers: int, days: int, seed: int, console: Console | None = None
) -> Figures:
    """Generate the book, simulate it with a progress bar, and count the figures."""
    scenario = build_book(customers=customers, days=days, seed=seed)
    with Progress(
        TextColumn("[bold]simulating[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} hours"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(f"{customers} customers, {days} days", total=None)
        with _quiet_pipeline():
            lines = runner.run(
                scenario, progress=lambda i, n: bar.update(task, completed=i, total=n)
            )
    return compute(scenario, lines, RATES)


def _money_table(f: Figures) -> Table:
    table = Table(
        "currency", "failed", "recovered", "rate", "lost", "retrying",
        title="Recovered revenue",
        caption="lost: unpaid, retries stopped; retrying: unpaid, retries still ahead",
    )  # fmt: skip
    for cur, m in f.money.items():
        table.add_row(
            cur,
            amount(m.failed),
            amount(m.recovered),
            _pct(m.recovered, m.failed),
            amount(m.lost),
            amount(m.retrying),
        )
    failed = sum(m.failed / RATES[cur] for cur, m in f.money.items())
    recovered = sum(m.recovered / RATES[cur] for cur, m in f.money.items())
    table.add_row(
        "all, EUR", amount(failed), amount(recovered), _pct(recovered, failed), "", "", style="bold"
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


def _summary_tables(f: Figures) -> list[Table]:
    head = Table("figure", "value", title="Dunning")
    head.add_row("invoices that failed", str(f.failed))
    head.add_row("recovered", f"{f.recovered} ({_pct(f.recovered, f.failed)})")
    head.add_row("time to recovery, median", _days(f.median_days))
    head.add_row("time to recovery, p90", _days(f.percentile_days(0.9)))
    head.add_row("subscriptions suspended", str(f.suspended))
    head.add_row("... reactivated by a later payment", str(f.reactivated))
    head.add_row("charge attempts", str(f.attempts))
    head.add_row("cards updated", str(f.card_updates))
    head.add_row("card tokens purged: removed cards", str(f.tokens_purged["card_removed"]))
    head.add_row("card tokens purged: 2 years unused", str(f.tokens_purged["retention"]))
    flow = Table("stage", "invoices", "of failed", title="Dunning funnel")
    for stage, n in funnel(f):
        flow.add_row(stage, str(n), _pct(n, f.failed))
    mails = Table("email", "sent", title="Emails by kind")
    for kind, n in sorted(f.emails.items(), key=lambda kv: -kv[1]):
        mails.add_row(kind, str(n))
    stops = Table("reason", "invoices", title="Why retries stopped")
    for reason, n in f.stop_reasons.most_common():
        stops.add_row(reason, str(n))
    return [head, _money_table(f), flow, mails, stops]


def run_demo(*, customers: int, days: int, report: Path | None, seed: int) -> None:
    """Generate ``customers`` customers (seeded), simulate ``days`` days, print the summary,
    and write the HTML report to ``report`` when given."""
    console = Console()
    began = time.monotonic()
    figures = simulate_book(customers=customers, days=days, seed=seed)
    elapsed_s = time.monotonic() - began
    console.print(
        f"[bold]dunning demo[/]: {customers} customers, {days} days from "
        f"{figures.start:%Y-%m-%d}, seed {seed} ({elapsed_s:.0f} s)"
    )
    for table in _summary_tables(figures):
        console.print(table)
    if report is not None:
        write_report(figures, report, seed=seed)
        console.print(f"report written to {report}")


def write_report(figures: Figures, path: Path, *, seed: int) -> None:
    """The same summary as a self-contained HTML page with inline SVG charts."""
    path.write_text(html_report.render(figures, funnel(figures), seed=seed), encoding="utf-8")
    log.info("demo report written to %s", path)
