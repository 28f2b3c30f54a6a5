"""Multi-row ``INSERT … ON CONFLICT (id) DO UPDATE … WHERE <something differs>``.

The ``WHERE`` makes a repeated import a no-op: a row whose columns already hold the imported
values is not written, so its ``updated_at`` does not move. ``RETURNING id`` then names exactly
the rows that were inserted or changed.

A chunk travels as one JSON parameter (``INSERT … SELECT … FROM json_to_recordset(…)`` on
PostgreSQL, ``json_each`` on SQLite).
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
    any_,
    bindparam,
    case,
    cast,
    column,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import JSON

from dunning.store.types import UtcDateTime


def _is_pg(dialect: Dialect) -> bool:
    if dialect.name not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"import supports SQLite and PostgreSQL, not {dialect.name}")
    return dialect.name == "postgresql"


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass timezone-aware datetimes")
    return value.isoformat()


def encode_rows(dialect: Dialect, table: Table, rows: Sequence[dict[str, Any]]) -> str:
    """The rows as one JSON array, each value in the form the column stores it on ``dialect``.

    This is the chunk's parameter; it needs no database, so it can be built while the
    previous chunk is being written.
    """
    # SQLite has no datetime or JSON type: its values are the text SQLAlchemy would bind.
    pg = _is_pg(dialect)
    stamps: dict[str, Any] = {}
    documents: list[str] = []
    for name in rows[0]:
        type_ = table.c[name].type
        if isinstance(type_, UtcDateTime):
            stamps[name] = _iso if pg else type_.dialect_impl(dialect).bind_processor(dialect)
        elif isinstance(type_, JSON) and not pg:
            documents.append(name)
    out = []
    for original in rows:
        row = original.copy()
        for name, to_text in stamps.items():
            if row[name] is not None:
                row[name] = to_text(row[name])
        for name in documents:
            row[name] = json.dumps(row[name])
        out.append(row)
    return json.dumps(out)


def id_in(conn: Connection, column: ColumnElement[Any], ids: Sequence[str]) -> ColumnElement[bool]:
    """``column IN ids``, with the ids sent as one JSON parameter."""
    payload = bindparam(None, json.dumps(list(ids)), type_=Text)
    if _is_pg(conn.dialect):
        # ``= ANY(ARRAY(…))`` rather than ``IN (SELECT …)``: the planner then probes the index
        # even before the tables have statistics (the first chunks of a big import).
        ids_json = select(func.json_array_elements_text(cast(payload, postgresql.JSON)))
        return column == any_(func.array(ids_json.scalar_subquery()))
    return column.in_(select(literal_column("value")).select_from(func.json_each(payload)))


def id_table(conn: Connection, ids: Sequence[str]) -> Any:
    """The ids as a one-column derived table ``ids(id)``, from one JSON parameter.

    For joins: ``= ANY(…)`` used as a filter (not an index condition) scans the whole list
    for every row, which a stale plan can do to thousands of rows.
    """
    payload = bindparam(None, json.dumps(list(ids)), type_=Text)
    if _is_pg(conn.dialect):
        elements = func.json_array_elements_text(cast(payload, postgresql.JSON))
        return elements.table_valued("value").render_derived(name="ids")
    return func.json_each(payload).table_valued("value", name="ids")


def _insert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    same: dict[str, Any],
    payload: str | None,
) -> Any:
    """``INSERT … SELECT`` from one JSON parameter; ``same`` holds values common to all rows.

    A statement with a placeholder per value costs more on the client (building, binding,
    parsing) than the insert costs the database.
    """
    names = list(rows[0])
    if payload is None:
        payload = encode_rows(conn.dialect, table, rows)
    param = bindparam(None, payload, type_=Text)
    common = [bindparam(None, v, type_=table.c[k].type).label(k) for k, v in same.items()]
    if _is_pg(conn.dialect):
        source = (
            func.json_to_recordset(cast(param, postgresql.JSON))
            .table_valued(*[column(name, table.c[name].type) for name in names])
            .render_derived(name="imported", with_types=True)
        )
        values = select(*[source.c[name] for name in names], *common)
        return postgresql.insert(table).from_select([*names, *same], values)
    each = func.json_each(param).table_valued("value", name="imported")
    extracted = [func.json_extract(each.c.value, f"$.{name}").label(name) for name in names]
    # SQLite needs a WHERE in INSERT … SELECT … ON CONFLICT: "ON" would read as a join.
    values = select(*extracted, *common).where(true())
    return sqlite.insert(table).from_select([*names, *same], values)


def _comparable(column: Any) -> Any:
    # PostgreSQL's json type has no equality operator; both sides are serialised the same way,
    # so their text compares.
    return cast(column, Text) if isinstance(column.type, JSON) else column


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    now: datetime,
    update: Iterable[str],
    forward_only: Iterable[str] = (),
    same: Iterable[str] = (),
    guard: ColumnElement[bool] | None = None,
    payload: str | None = None,
) -> set[str]:
    """Insert ``rows`` (all with the same keys) or update those that differ; return ids written.

    ``update`` columns take the imported value; ``forward_only`` columns (times the pipeline
    advances, such as ``last_payment_at``) only move later, never back. An existing row is
    updated only when its ``same`` columns equal the imported ones and ``guard`` holds.
    ``created_at`` and ``updated_at`` are ``now``; ``updated_at`` moves only on a real change.
    ``payload`` is :func:`encode_rows` of ``rows`` when already made.
    """
    if not rows:
        return set()
    stmt = _insert(conn, table, rows, {"created_at": now, "updated_at": now}, payload)
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
    return set(conn.execute(stmt.returning(table.c.id)).scalars())


def insert_new(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    now: datetime,
    payload: str | None = None,
) -> set[str]:
    """Insert the rows whose id is new, stamped ``now``; leave existing ones alone.

    Returns the ids inserted.
    """
    if not rows:
        return set()
    stmt = _insert(conn, table, rows, {"created_at": now, "updated_at": now}, payload)
    stmt = stmt.on_conflict_do_nothing(index_elements=[table.c.id])
    return set(conn.execute(stmt.returning(table.c.id)).scalars())


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Plain multi-row insert (tables without a natural key, such as the audit log)."""
    if rows:
        stmt = _insert(conn, table, rows, {}, None)
        conn.execute(stmt)
