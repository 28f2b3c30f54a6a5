"""Reading and moving the cursors of a sync (:data:`~dunning.store.tables.sync_cursors`).

A run starts fresh when no cursor is stored or every kind finished last time; otherwise it
resumes: finished kinds are skipped and the others continue after their stored object.
:func:`advance` is called in the transaction that stores a page's rows, so the cursor never
runs ahead of what is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update

from dunning.store.tables import sync_cursors


@dataclass(frozen=True)
class Cursor:
    after_id: str | None = None
    pages: int = 0
    finished: bool = False


def start(engine: Engine, source: str, kinds: Sequence[str], now: datetime, *, restart: bool
          ) -> tuple[dict[str, Cursor], bool]:  # fmt: skip
    """The cursor of each kind for this run, and whether it resumes an unfinished run."""
    sc = sync_cursors.c
    with engine.begin() as conn:
        rows = conn.execute(
            select(sc.kind, sc.after_id, sc.pages, sc.finished_at).where(sc.source == source)
        ).all()
        stored = {r.kind: Cursor(r.after_id, r.pages, r.finished_at is not None) for r in rows}
        resume = (
            not restart
            and bool(stored)
            and not all(stored.get(k, Cursor()).finished for k in kinds)
        )
        if resume:
            missing = [k for k in kinds if k not in stored]
            _insert(conn, source, missing, now)
            return {k: stored.get(k, Cursor()) for k in kinds}, True
        conn.execute(delete(sync_cursors).where(sc.source == source))
        _insert(conn, source, list(kinds), now)
        return {k: Cursor() for k in kinds}, False


def _insert(conn: Connection, source: str, kinds: list[str], now: datetime) -> None:
    if kinds:
        conn.execute(
            insert(sync_cursors),
            [
                {"source": source, "kind": k, "pages": 0, "started_at": now, "updated_at": now}
                for k in kinds
            ],
        )


def advance(
    conn: Connection,
    source: str,
    kind: str,
    after_id: str | None,
    now: datetime,
    *,
    finished: bool,
) -> None:
    """Record a stored page: continue after ``after_id``; ``finished`` when it was the last."""
    sc = sync_cursors.c
    values: dict[str, object] = {"pages": sc.pages + 1, "updated_at": now}
    if after_id is not None:
        values["after_id"] = after_id
    if finished:
        values["finished_at"] = now
    conn.execute(update(sync_cursors).where(sc.source == source, sc.kind == kind).values(**values))
