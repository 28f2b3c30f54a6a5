"""Dialect-aware ``INSERT … ON CONFLICT`` for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    conflict: list[str],
    returning: Any = None,
) -> list[Any]:
    """Insert ``rows``, skipping those that hit the unique ``conflict`` columns.

    Returns the ``returning`` column of the rows actually inserted.
    """
    if not rows:
        return []
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=conflict)
    if returning is not None:
        return list(conn.execute(stmt.returning(returning), rows).scalars())
    conn.execute(stmt, rows)
    return []
