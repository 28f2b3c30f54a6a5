"""Multi-row ``INSERT … ON CONFLICT (id) DO UPDATE … WHERE <something differs>``.

The ``WHERE`` makes a repeated import a no-op: a row whose columns already hold the imported
values is not written, so its ``updated_at`` does not move. ``RETURNING id`` then names exactly
the rows that were inserted or changed.

A chunk's rows are read from the staging tables on PostgreSQL (``INSERT … SELECT … FROM
import_<table>``, filled by :mod:`dunning.imports.staging`) and from one JSON parameter on
SQLite (``json_each``). Each statement is built once per dialect and then only executed: its
parameters are the chunk's timestamp (and, on SQLite, the rows).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
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

from dunning.imports.staging import copy_rows, staging_table
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


def _comparable(column: Any) -> Any:
    # PostgreSQL's json type has no equality operator; both sides are serialised the same way,
    # so their text compares.
    return cast(column, Text) if isinstance(column.type, JSON) else column


@dataclass(frozen=True, eq=False)
class Write:
    """How a chunk's rows of one table are written (the statement is built on first use).

    ``update`` columns take the imported value; ``forward_only`` columns (times the pipeline
    advances, such as ``last_payment_at``) only move later, never back. An existing row is
    updated only when its ``same`` columns equal the imported ones and ``guard`` holds; with
    ``new_only`` an existing row is left alone. ``created_at`` and ``updated_at`` are the
    chunk's ``now``; ``updated_at`` moves only on a real change. ``RETURNING id`` names the
    rows inserted or changed.
    """

    table: Table
    fields: tuple[str, ...]
    update: tuple[str, ...] = ()
    forward_only: tuple[str, ...] = ()
    same: tuple[str, ...] = ()
    guard: ColumnElement[bool] | None = None
    new_only: bool = False
    _built: dict[str, Any] = field(default_factory=dict, repr=False)

    def statement(self, dialect: Dialect) -> Any:
        """The statement for ``dialect``; parameters ``stamp`` (and ``rows`` on SQLite)."""
        built = self._built.get(dialect.name)
        if built is None:
            built = self._build(_is_pg(dialect))
            self._built[dialect.name] = built
        return built

    def _build(self, pg: bool) -> Any:
        table = self.table
        stmt = _insert(pg, table, self.fields, stamped=True)
        if self.new_only:
            stmt = stmt.on_conflict_do_nothing(index_elements=[table.c.id])
            return stmt.returning(table.c.id)
        new = stmt.excluded
        set_: dict[str, Any] = {}
        differs: list[ColumnElement[bool]] = []
        for name in self.update:
            set_[name] = new[name]
            differs.append(_comparable(table.c[name]).is_distinct_from(_comparable(new[name])))
        for name in self.forward_only:
            later = and_(
                new[name].is_not(None),
                or_(table.c[name].is_(None), new[name] > table.c[name]),
            )
            set_[name] = case((later, new[name]), else_=table.c[name])
            differs.append(later)
        set_["updated_at"] = new["updated_at"]
        where = or_(false(), *differs)
        conditions = [table.c[name] == new[name] for name in self.same]
        if self.guard is not None:
            conditions.append(self.guard)
        if conditions:
            where = and_(*conditions, where)
        stmt = stmt.on_conflict_do_update(index_elements=[table.c.id], set_=set_, where=where)
        return stmt.returning(table.c.id)


def _insert(pg: bool, table: Table, fields: Sequence[str], *, stamped: bool) -> Any:
    """``INSERT … SELECT`` of ``fields`` from the chunk's rows, plus ``created_at`` and
    ``updated_at`` from the ``stamp`` parameter when ``stamped``.

    One statement per chunk: a placeholder per value costs more on the client (building,
    binding, parsing) than the insert costs the database.
    """
    stamp = bindparam("stamp", type_=UtcDateTime())
    common = [stamp.label("created_at"), stamp.label("updated_at")] if stamped else []
    names = [*fields, *(("created_at", "updated_at") if stamped else ())]
    if pg:
        source = staging_table(table.name)
        values = select(*[source.c[name] for name in fields], *common)
        return postgresql.insert(table).from_select(names, values)
    param = bindparam("rows", type_=Text)
    each = func.json_each(param).table_valued("value", name="imported")
    extracted = [func.json_extract(each.c.value, f"$.{name}").label(name) for name in fields]
    # SQLite needs a WHERE in INSERT … SELECT … ON CONFLICT: "ON" would read as a join.
    values = select(*extracted, *common).where(true())
    return sqlite.insert(table).from_select(names, values)


def write_rows(
    conn: Connection,
    spec: Write,
    rows: Sequence[dict[str, Any]],
    *,
    now: datetime,
    payload: str | None = None,
) -> set[str]:
    """Write ``rows`` as ``spec`` says; return the ids inserted or changed.

    On PostgreSQL the rows must be staged already (:func:`dunning.imports.staging.stage`); on
    SQLite ``payload`` is :func:`encode_rows` of ``rows`` when already made.
    """
    if not rows:
        return set()
    params: dict[str, Any] = {"stamp": now}
    if not _is_pg(conn.dialect):
        params["rows"] = payload or encode_rows(conn.dialect, spec.table, rows)
    return set(conn.execute(spec.statement(conn.dialect), params).scalars())


def append_rows(
    conn: Connection, table: Table, fields: tuple[str, ...], rows: Sequence[dict[str, Any]]
) -> None:
    """Plain multi-row insert into a table without a natural key (such as the audit log)."""
    if not rows:
        return
    if _is_pg(conn.dialect):
        copy_rows(conn, table.name, table, fields, rows)
        return
    stmt = _insert(False, table, fields, stamped=False)
    conn.execute(stmt, {"rows": encode_rows(conn.dialect, table, rows)})
