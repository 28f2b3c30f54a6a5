"""Rows by id, the one way to read them for every table. Rows come back as read-only
mappings; a missing row is :class:`~dunning.errors.NotFound` naming the table and the id."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, RowMapping, Table, select

from dunning.errors import NotFound


def find(conn: Connection, table: Table, key: str, *, lock: bool = False) -> RowMapping | None:
    """The row of ``table`` with id ``key``, or ``None``; ``lock`` takes a row lock on
    PostgreSQL (SQLite's write transactions are serialised already)."""
    stmt = select(table).where(table.c.id == key)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).mappings().first()


def get(conn: Connection, table: Table, key: str, *, lock: bool = False) -> RowMapping:
    """The row of ``table`` with id ``key``; :class:`NotFound` when there is none."""
    row = find(conn, table, key, lock=lock)
    if row is None:
        raise NotFound(f"{table.name} {key!r} does not exist")
    return row


def by_ids(
    conn: Connection, table: Table, ids: Iterable[str | None], *, required: bool = False
) -> dict[str, RowMapping]:
    """The rows of ``table`` with these ids (``None`` ids are skipped), keyed by id.

    ``required`` raises :class:`NotFound` naming the first id that has no row.
    """
    wanted = list(dict.fromkeys(i for i in ids if i))
    if not wanted:
        return {}
    found = {
        r["id"]: r for r in conn.execute(select(table).where(table.c.id.in_(wanted))).mappings()
    }
    if required:
        missing = next((i for i in wanted if i not in found), None)
        if missing is not None:
            raise NotFound(f"{table.name} {missing!r} does not exist")
    return found
