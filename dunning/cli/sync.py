"""``dunning sync stripe``: backfill the book from the merchant's Stripe account."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import OperationalError

from dunning.cli.common import EXIT_FAILURE, EXIT_USAGE, Exit, console, container, print_json, ready
from dunning.errors import GatewayUnavailable
from dunning.gateways.stripe_read import PAGE_LIMIT, StripeReader, StripeReadError
from dunning.imports.stripe_customers import KindReport
from dunning.imports.stripe_sync import KINDS, SyncProgress, SyncReport, sync_stripe
from dunning.mail.render import LOCALES
from dunning.store.readiness import reason

sync_app = typer.Typer(
    help="Bring the book up to date from a gateway account.", no_args_is_help=True
)

AGAIN = "the pages stored so far stay stored; run it again to continue from there"


def register(app: typer.Typer) -> None:
    app.add_typer(sync_app, name="sync")


@sync_app.command("stripe")
def stripe_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print a summary object."),
    restart: bool = typer.Option(
        False, "--restart", help="Start from the first page even if the last run stopped."
    ),
    page_size: int = typer.Option(PAGE_LIMIT, "--page-size", min=1, max=PAGE_LIMIT, hidden=True),
) -> None:
    """Store the Stripe account's customers, default cards, subscriptions and open invoices.

    Uses DUNNING_STRIPE__API_KEY (and __API_BASE). Safe to run again: what is stored is
    updated, nothing is duplicated. A run that stops (a crash, a network failure) continues
    where it stopped the next time. What is taken and how: docs/stripe-sync.md. Exit code 0: done;
    1: Stripe or the database failed part-way; 2: bad settings, a refused API key, or a
    missing or unmigrated database.
    """
    c = container()
    try:
        ready(c)
        started = time.perf_counter()
        with (
            StripeReader.from_settings(c.settings) as reader,
            _progress(enabled=console.is_terminal and not as_json) as progress,
        ):
            report = sync_stripe(c, reader, now=c.clock.now(), locales=LOCALES,
                                 restart=restart, progress=progress, limit=page_size)  # fmt: skip
        elapsed_s = time.perf_counter() - started
    except StripeReadError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise Exit(EXIT_USAGE if exc.status in (401, 403) else EXIT_FAILURE) from exc
    except GatewayUnavailable as exc:
        sys.stderr.write(f"error: {exc}; {AGAIN}\n")
        raise Exit(EXIT_FAILURE) from exc
    except OperationalError as exc:
        sys.stderr.write(f"error: the database failed: {reason(exc)}; {AGAIN}\n")
        raise Exit(EXIT_FAILURE) from exc
    finally:
        c.close()
    _report(report, elapsed_s, as_json)


def _report(report: SyncReport, elapsed_s: float, as_json: bool) -> None:
    if as_json:
        print_json({**report.as_dict(), "elapsed_s": round(elapsed_s, 3)})
        return
    if report.resumed:
        console.print("continued the run that stopped before", highlight=False)
    for kind in KINDS:
        r = report.kinds[kind]
        why = "; ".join(f"{n} {text}" for text, n in sorted(r.reasons.items()))
        console.print(
            f"{kind}: {r.read} read, {r.inserted} new, {r.updated} updated, "
            f"{r.unchanged} unchanged, {r.skipped} skipped" + (f" ({why})" if why else ""),
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
    console.print(f"in {elapsed_s:.1f} s", highlight=False)


@contextmanager
def _progress(*, enabled: bool) -> Iterator[SyncProgress | None]:
    """One line per kind: objects read and stored so far (Stripe does not say how many)."""
    if not enabled:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"),
               TextColumn("{task.fields[summary]}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=False) as bar:
        tasks = {kind: bar.add_task(kind, total=None, summary="waiting") for kind in KINDS}

        def advance(kind: str, r: KindReport) -> None:
            summary = f"{r.read} read, {r.inserted} new, {r.updated} updated, {r.skipped} skipped"
            bar.update(tasks[kind], summary=summary, completed=r.read)

        yield advance
        for task in tasks.values():
            bar.update(task, total=1, completed=1)  # stops the spinners
