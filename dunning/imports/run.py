"""``import_file``: read JSON lines, validate each, load the good ones chunk by chunk.

Each chunk is one transaction. A line is refused as a whole when anything in it is wrong; the
other lines still load. A customer (or a card, subscription or invoice id) seen twice in a file
is loaded in file order: the later line wins.
"""

from __future__ import annotations

import gc
import logging
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine

from dunning.errors import PermanentError
from dunning.imports.checks import LineError, parse_line
from dunning.imports.commit import Target, write
from dunning.imports.lines import CustomerLine
from dunning.imports.writer import ChunkResult, prepare
from dunning.ports import Pipeline

log = logging.getLogger(__name__)

# Called after each chunk with (lines read, bytes read).
Progress = Callable[[int, int], None]

# Chunks handed to the writers and not yet written, and threads (connections) writing them on
# PostgreSQL. Two chunks are written at once, each in its own transaction, unless they name a
# common id; SQLite has one writer at a time anyway.
IN_FLIGHT = 2
WRITERS = 2

# Allocations between the cyclic garbage collector's young-generation runs while importing.
GC_THRESHOLD = 200_000


class UnreadableFile(PermanentError):
    """The import file cannot be opened or read."""


@dataclass
class ImportReport:
    """What an import did, counted in lines (one customer per line)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    refused_lines: int = 0
    refused: list[LineError] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def add(self, chunk: ChunkResult) -> None:
        self.inserted += len(chunk.inserted)
        self.updated += len(chunk.updated)
        self.unchanged += len(chunk.unchanged)
        self.refuse(chunk.refused)

    def refuse(self, errors: list[LineError]) -> None:
        self.refused.extend(errors)
        self.refused_lines += len({e.line for e in errors})

    def as_dict(self) -> dict[str, Any]:
        return {
            "loaded": self.loaded,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "refused": self.refused_lines,
            "errors": len(self.refused),
        }


class _Seen:
    """The ids of a chunk, by kind."""

    def __init__(self) -> None:
        self.customers: set[str] = set()
        self.cards: set[str] = set()
        self.subscriptions: set[str] = set()
        self.invoices: set[str] = set()

    # Plain loops rather than any(generator): these run for every line.
    def clashes(self, c: CustomerLine) -> bool:
        if c.id in self.customers:
            return True
        for pm in c.payment_methods:
            if pm.id in self.cards:
                return True
        for s in c.subscriptions:
            if s.id in self.subscriptions:
                return True
        return any(inv.id in self.invoices for inv in c.invoices)  # rarely any invoices

    def overlaps(self, other: _Seen) -> bool:
        return not (
            self.customers.isdisjoint(other.customers)
            and self.cards.isdisjoint(other.cards)
            and self.subscriptions.isdisjoint(other.subscriptions)
            and self.invoices.isdisjoint(other.invoices)
        )

    def add(self, c: CustomerLine) -> None:
        self.customers.add(c.id)
        for pm in c.payment_methods:
            self.cards.add(pm.id)
        for s in c.subscriptions:
            self.subscriptions.add(s.id)
        for inv in c.invoices:
            self.invoices.add(inv.id)


def import_file(
    engine: Engine,
    path: str | Path,
    *,
    now: datetime,
    pipeline: Pipeline | None = None,
    chunk_size: int = 2000,
    progress: Progress | None = None,
) -> ImportReport:
    """Load the customers of a JSON-lines file; raise :class:`UnreadableFile` if it cannot be read.

    Blank lines are skipped. ``now`` stamps every row written; ``pipeline`` continues the
    dunning of the invoices the file brings (a file with some cannot be loaded without it).
    """
    if now.tzinfo is None:
        raise ValueError("import_file needs a timezone-aware now")
    report = ImportReport()
    target = Target(engine, now, pipeline)
    try:
        with open(path, "rb") as f, _rare_collections():
            _run(target, f, report, chunk_size=max(1, chunk_size), progress=progress)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path}: {exc.strerror or exc}") from exc
    return report


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Run the cyclic garbage collector rarely for the duration.

    A line allocates a few dozen objects (models, rows) and none is in a reference cycle, so
    reference counting frees them all; at the default threshold (700) the collector ran
    thousands of times and, as each chunk's objects lived on, rescanned them: a third of the
    reading thread's time.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _Writer:
    """Writes chunks on background threads, in file order wherever order matters.

    Parsing the next chunk (Python, holding the GIL) then overlaps the database's work on the
    previous ones (the driver releases the GIL while it waits). Chunks that share no id touch
    no common row, so they may commit in either order; one that names an id of a chunk still
    being written waits for it.
    """

    def __init__(self, target: Target, report: ImportReport) -> None:
        self._target, self._report = target, report
        workers = WRITERS if target.engine.dialect.name == "postgresql" else 1
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import-writer")
        self._pending: deque[tuple[_Seen, Future[ChunkResult]]] = deque()

    def submit(self, batch: list[tuple[int, CustomerLine]], ids: _Seen) -> None:
        target = self._target
        prepared = prepare(target.engine.dialect, [c for _, c in batch], target.now)
        # A chunk naming an id of one being written waits for it: the later line wins.
        while self._pending and (
            len(self._pending) >= IN_FLIGHT or any(ids.overlaps(s) for s, _ in self._pending)
        ):
            self._collect()
        future = self._pool.submit(write, target, batch, prepared)
        self._pending.append((ids, future))

    def wait(self) -> None:
        while self._pending:
            self._collect()

    def _collect(self) -> None:
        self._report.add(self._pending.popleft()[1].result())

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _run(
    target: Target,
    f: BinaryIO,
    report: ImportReport,
    *,
    chunk_size: int,
    progress: Progress | None,
) -> None:
    batch: list[tuple[int, CustomerLine]] = []
    seen = _Seen()
    lines_read = bytes_read = 0
    writer = _Writer(target, report)

    def flush() -> None:
        nonlocal batch, seen
        if batch:
            writer.submit(batch, seen)
            batch = []
            seen = _Seen()
        if progress is not None:
            progress(lines_read, bytes_read)

    try:
        for lineno, raw in enumerate(f, start=1):
            lines_read, bytes_read = lineno, bytes_read + len(raw)
            if not raw.strip():
                continue
            parsed = parse_line(lineno, raw, target.now)
            if isinstance(parsed, list):
                report.refuse(parsed)
                continue
            if seen.clashes(parsed):
                # The same id twice in one multi-row upsert is an error on PostgreSQL;
                # writing what came before first keeps file order.
                flush()
            batch.append((lineno, parsed))
            seen.add(parsed)
            if len(batch) >= chunk_size:
                flush()
        flush()
        writer.wait()
    finally:
        writer.close()
    report.refused.sort(key=lambda error: error.line)


def iter_errors(report: ImportReport, limit: int) -> Iterator[str]:
    """The first ``limit`` errors as ``line N: path: message``, then how many were left out."""
    for error in report.refused[:limit]:
        yield str(error)
    if len(report.refused) > limit:
        yield f"... and {len(report.refused) - limit} more errors"
