"""A chunk's rows on PostgreSQL: binary ``COPY``, into the tables or into staging tables.

Binary COPY encodes each row in the driver's C code, with no JSON text to build on the client
or parse on the server. Rows of new customers are COPYed straight into their tables; others go
to temporary staging tables that the upserts read (``INSERT … SELECT … FROM import_customers
ON CONFLICT …``): a temporary table is private to the session and written without WAL.

The tables are created with ``IF NOT EXISTS`` in every chunk's transaction (one round trip): a
pooled connection may be new, and a rolled-back transaction takes the tables it made with it.
``ON COMMIT DELETE ROWS`` empties them at every commit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from operator import itemgetter
from typing import Any

import psycopg
from sqlalchemy import Column, Connection, MetaData, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateTable

from dunning.imports.rows import CARD_FIELDS, CUSTOMER_FIELDS, INVOICE_FIELDS, SUBSCRIPTION_FIELDS
from dunning.store.tables import customers, invoices, payment_methods, subscriptions

_metadata = MetaData()

# Staged table -> the fields its rows carry.
STAGED: dict[str, tuple[Table, tuple[str, ...]]] = {
    t.name: (t, fields)
    for t, fields in (
        (customers, CUSTOMER_FIELDS),
        (payment_methods, CARD_FIELDS),
        (subscriptions, SUBSCRIPTION_FIELDS),
        (invoices, INVOICE_FIELDS),
    )
}


@cache
def staging_table(name: str) -> Table:
    """The temporary table ``import_<name>``: the staged fields, typed as in ``name``."""
    table, fields = STAGED[name]
    return Table(
        f"import_{name}",
        _metadata,
        *[Column(field, table.c[field].type) for field in fields],
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )


@cache
def _create_sql(dialect: Dialect) -> str:
    return ";\n".join(
        str(CreateTable(staging_table(name), if_not_exists=True).compile(dialect=dialect)).strip()
        for name in STAGED
    )


@cache
def _copy_plan(
    dialect: Dialect, target: str, types_from: Table, columns: tuple[str, ...], from_row: int
) -> tuple[str, list[str], Callable[[dict[str, Any]], tuple[Any, ...]]]:
    """The COPY statement, the columns' type names and a getter of the values a row holds
    (its first ``from_row`` columns), in order."""
    sql = f"COPY {target} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    # The driver wants a type name for binary COPY: "VARCHAR(64)" is "varchar".
    types = [
        re.sub(r"\(.*\)", "", types_from.c[name].type.compile(dialect=dialect)).strip().lower()
        for name in columns
    ]
    return sql, types, itemgetter(*columns[:from_row])


def stage(conn: Connection, rows: dict[str, Sequence[dict[str, Any]]]) -> None:
    """Create the staging tables where missing and COPY ``rows`` (by table name) into them."""
    driver = _driver(conn)
    with driver.cursor() as cursor:
        create = _create_sql(conn.dialect)
        _run(conn, create, lambda: cursor.execute(create))
    for name, data in rows.items():
        table, fields = STAGED[name]
        copy_rows(conn, staging_table(name).name, table, fields, data)


def copy_rows(
    conn: Connection,
    target: str,
    types_from: Table,
    fields: Sequence[str],
    rows: Sequence[dict[str, Any]],
    *,
    stamp: datetime | None = None,
) -> None:
    """Binary COPY of ``rows`` (their ``fields``, typed as in ``types_from``) into ``target``;
    with ``stamp``, also as every row's ``created_at`` and ``updated_at``.

    Errors surface as SQLAlchemy's (``DataError``, ``IntegrityError``, …), like a statement's.
    """
    if not rows:
        return
    stamps = () if stamp is None else (stamp, stamp)
    columns = (*fields, *(("created_at", "updated_at") if stamps else ()))
    sql, types, values = _copy_plan(conn.dialect, target, types_from, columns, len(fields))

    def copy() -> None:
        with _driver(conn).cursor() as cursor, cursor.copy(sql) as out:
            out.set_types(types)
            for row in rows:
                out.write_row(values(row) + stamps)

    _run(conn, sql, copy)


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise NotImplementedError(
            "import into PostgreSQL needs the psycopg 3 driver: use a postgresql:// URL"
        )
    return driver


def _run(conn: Connection, sql: str, action: Callable[[], object]) -> None:
    try:
        action()
    except psycopg.Error as exc:
        raise DBAPIError.instance(
            sql, None, exc, psycopg.Error, hide_parameters=True, dialect=conn.dialect
        ) from exc
