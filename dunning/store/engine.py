"""Database engines for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from dunning.errors import ConfigError

# Seconds to wait for a PostgreSQL server to accept a connection: an unreachable host fails
# with a message instead of hanging a command.
CONNECT_TIMEOUT_S = 10


def normalise_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """Build an engine (connecting lazily); SQLite gets WAL and a busy timeout.

    Creates no file or folder: a SQLite path that does not exist is reported by
    :func:`dunning.store.readiness.require_database`. A URL that is not a database URL raises
    :class:`~dunning.errors.ConfigError` naming ``DUNNING_DATABASE_URL``.
    """
    try:
        return _engine(normalise_url(url), pool_size)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        # Only the scheme is shown: the rest may hold a password.
        start = url.split("://", 1)[0] + "://…" if "://" in url else "without a scheme"
        raise ConfigError(
            f"DUNNING_DATABASE_URL is not a database URL ({start}: {exc}); use "
            "sqlite:///PATH or postgresql://USER@HOST:PORT/DATABASE"
        ) from None


def _engine(url: str, pool_size: int) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take it over so that
        # BEGIN IMMEDIATE can be used for writes (no upgrade deadlocks between threads).
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
