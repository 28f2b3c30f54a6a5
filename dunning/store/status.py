"""Lifecycle moves in SQL, guarded by :mod:`dunning.model`: every status write of an invoice,
subscription or attempt goes through :func:`move`, a compare-and-set on ``(id, status)`` that
only takes the moves the model allows. A row that moved meanwhile is left alone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Table, tuple_, update
from sqlalchemy.sql.elements import ColumnElement

from dunning.model import may_move


def move(
    conn: Connection,
    table: Table,
    rows: Iterable[tuple[Any, str]],
    target: StrEnum,
    *,
    where: Sequence[ColumnElement[bool]] = (),
    **values: Any,
) -> set[Any]:
    """Move each ``(id, current status)`` row to ``target`` (with ``values``) where the
    lifecycle allows it, the row still has that status and every ``where`` holds; return the
    ids moved."""
    movable = [(key, status) for key, status in rows if may_move(status, target)]
    if not movable:
        return set()
    return set(
        conn.execute(
            update(table)
            .where(tuple_(table.c.id, table.c.status).in_(movable), *where)
            .values(status=target.value, **values)
            .returning(table.c.id)
        ).scalars()
    )
