"""``dunning import FILE``: load customers from JSON lines (format: ``docs/import-format.md``)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.exc import OperationalError

from dunning.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    Exit,
    console,
    container,
    print_json,
    ready,
)
from dunning.imports import ImportReport, UnreadableFile, import_file, iter_errors
from dunning.imports import Progress as ProgressCallback
from dunning.store.readiness import reason

MAX_ERRORS_SHOWN = 100


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)


def import_cmd(
    file: str = typer.Argument(..., help="JSON lines, one customer object per line."),
    as_json: bool = typer.Option(False, "--json", help="Print a summary object."),
    chunk_size: int = typer.Option(2000, "--chunk-size", min=1, max=20000, hidden=True),
) -> None:
    """Load customers, cards, subscriptions and invoices in dunning; safe to run again.

    The format is in docs/import-format.md. Exit code 0: every line loaded; 1: some lines
    refused (listed on stderr as ``line N: field.path: message``) or the database failed;
    2: the file cannot be read, or the database is missing, unreachable or not migrated.
    """
    c = container()
    try:
        ready(c)
        started = time.perf_counter()
        with _progress(file, enabled=console.is_terminal and not as_json) as progress:
            report = import_file(c.engine, file, now=c.clock.now(), pipeline=c,
                                 chunk_size=chunk_size, progress=progress)  # fmt: skip
        elapsed_s = time.perf_counter() - started
    except UnreadableFile as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise Exit(EXIT_USAGE) from exc
    except OperationalError as exc:
        # Chunks already committed stay loaded; importing the file again is safe.
        sys.stderr.write(f"error: the database failed: {reason(exc)}; importing again is safe\n")
        raise Exit(EXIT_FAILURE) from exc
    finally:
        c.close()
    _report(report, elapsed_s, as_json)


def _report(report: ImportReport, elapsed_s: float, as_json: bool) -> None:
    # Plain writes: messages hold brackets and paths that rich markup would eat.
    for line in iter_errors(report, MAX_ERRORS_SHOWN):
        sys.stderr.write(line + "\n")
    lines = report.loaded + report.refused_lines
    rate = round(lines / elapsed_s) if elapsed_s > 0 else None
    if as_json:
        print_json({**report.as_dict(), "elapsed_s": round(elapsed_s, 3), "lines_per_s": rate})
    else:
        console.print(
            f"{report.loaded} loaded ({report.inserted} new, {report.updated} updated, "
            f"{report.unchanged} unchanged), {report.refused_lines} refused, "
            f"in {elapsed_s:.1f} s ({rate} lines/s)",
            highlight=False,
            soft_wrap=True,
        )
    if report.refused_lines:
        raise Exit(EXIT_FAILURE)


@contextmanager
def _progress(path: str, *, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A rich progress bar over the file's bytes; nothing when stdout is not a terminal."""
    if not enabled:
        yield None
        return
    try:
        total: int | None = os.stat(path).st_size
    except OSError:
        total = None
    columns = (TextColumn("importing"), BarColumn(), TextColumn("{task.fields[lines]} lines"),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("import", total=total, lines=0)

        def advance(lines: int, done: int) -> None:
            bar.update(task, completed=done, lines=lines)

        yield advance
