"""Multi-row ``INSERT … ON CONFLICT (id) DO UPDATE … WHERE <something differs>``.

The ``WHERE`` makes a repeated import a no-op: a row whose columns already hold the imported
values is not written, so its ``updated_at`` does not move. ``RETURNING id`` then names exactly
the rows that were inserted or changed.

On PostgreSQL a chunk travels as one JSON parameter (``INSERT … SELECT … FROM
json_to_recordset(…)``): a statement with a placeholder per value, or arrays adapted value by
value, cost more on the client than the insert costs on the server. SQLite gets multi-row
``VALUES`` (its driver binds in C).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import JSON

from dunning.store.types import UtcDateTime


def _is_pg(conn: Connection) -> bool:
    if conn.dialect.name not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"import supports SQLite and PostgreSQL, not {conn.dialect.name}")
    return conn.dialect.name == "postgresql"


def _json_param(value: Any) -> Any:
    return cast(bindparam(None, json.dumps(value, default=_encode), type_=Text), postgresql.JSON)


def _encode(value: object) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass timezone-aware datetimes")
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def _stamps_as_text(table: Table, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    # Most stamps in a chunk are the same ``now``: format each distinct one once.
    names = [name for name in rows[0] if isinstance(table.c[name].type, UtcDateTime)]
    memo: dict[datetime, str] = {}
    out = []
    for row in rows:
        row = dict(row)
        for name in names:
            value = row[name]
            if value is not None:
                text = memo.get(value)
                if text is None:
                    text = memo[value] = _encode(value)
                row[name] = text
        out.append(row)
    return out


def id_in(conn: Connection, column: ColumnElement[Any], ids: Sequence[str]) -> ColumnElement[bool]:
    """``column IN ids``: one JSON parameter on PostgreSQL, one parameter per id on SQLite."""
    if _is_pg(conn):
        return column.in_(select(func.json_array_elements_text(_json_param(list(ids)))))
    return column.in_(list(ids))


def recordset(rows: Sequence[dict[str, Any]], columns: dict[str, Any], name: str) -> Any:
    """PostgreSQL: ``rows`` as a derived table ``name(columns…)`` from one JSON parameter."""
    return (
        func.json_to_recordset(_json_param(list(rows)))
        .table_valued(*[column(key, type_) for key, type_ in columns.items()])
        .render_derived(name=name, with_types=True)
    )


def _insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> tuple[Any, Any]:
    """The ``INSERT`` statement and its parameters for the connection's dialect."""
    if _is_pg(conn):
        names = list(rows[0])
        types = {name: table.c[name].type for name in names}
        source = recordset(_stamps_as_text(table, rows), types, "imported")
        stmt = postgresql.insert(table).from_select(names, select(*[source.c[n] for n in names]))
        return stmt, None
    return sqlite.insert(table), list(rows)


def _comparable(column: Any) -> Any:
    # PostgreSQL's json type has no equality operator; both sides are serialised the same way,
    # so their text compares.
    return cast(column, Text) if isinstance(column.type, JSON) else column


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    update: Iterable[str],
    forward_only: Iterable[str] = (),
    same: Iterable[str] = (),
    guard: ColumnElement[bool] | None = None,
) -> set[str]:
    """Insert ``rows`` (all with the same keys) or update those that differ; return ids written.

    ``update`` columns take the imported value; ``forward_only`` columns (times the pipeline
    advances, such as ``last_payment_at``) only move later, never back. An existing row is
    updated only when its ``same`` columns equal the imported ones and ``guard`` holds.
    ``updated_at`` moves only on a real change.
    """
    if not rows:
        return set()
    stmt, params = _insert(conn, table, rows)
    new = stmt.excluded
    set_: dict[str, Any] = {}
    differs: list[ColumnElement[bool]] = []
    for name in update:
        set_[name] = new[name]
        differs.append(_comparable(table.c[name]).is_distinct_from(_comparable(new[name])))
    for name in forward_only:
        later = and_(
            new[name].is_not(None),
            or_(table.c[name].is_(None), new[name] > table.c[name]),
        )
        set_[name] = case((later, new[name]), else_=table.c[name])
        differs.append(later)
    set_["updated_at"] = new["updated_at"]
    where = or_(false(), *differs)
    conditions = [table.c[name] == new[name] for name in same]
    if guard is not None:
        conditions.append(guard)
    if conditions:
        where = and_(*conditions, where)
    stmt = stmt.on_conflict_do_update(index_elements=[table.c.id], set_=set_, where=where)
    return set(conn.execute(stmt.returning(table.c.id), params).scalars())


def insert_new(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the rows whose id is new; leave existing ones alone. Returns the ids inserted."""
    if not rows:
        return set()
    stmt, params = _insert(conn, table, rows)
    stmt = stmt.on_conflict_do_nothing(index_elements=[table.c.id])
    return set(conn.execute(stmt.returning(table.c.id), params).scalars())


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Plain multi-row insert (tables without a natural key, such as the audit log)."""
    if rows:
        stmt, params = _insert(conn, table, rows)
        conn.execute(stmt, params)
