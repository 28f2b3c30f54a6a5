"""Transactions whose follow-up work (enqueueing) runs only once they are committed, and
connections whose statements commit one by one.

A message sent before its rows are committed could reach a worker that cannot see them yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

_KEY = "after_commit"


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()`` plus callbacks registered with :func:`after_commit`."""
    with engine.begin() as conn:
        conn.info[_KEY] = []
        try:
            yield conn
        finally:
            callbacks: list[Callable[[], None]] = conn.info.pop(_KEY, [])
    for callback in callbacks:
        callback()


def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Run ``callback`` after the transaction commits; dropped if it rolls back.

    Only inside :func:`transaction`: elsewhere nothing would ever run it, and the follow-up
    work (an enqueue, a metric) would be lost without a word.
    """
    pending = conn.info.get(_KEY)
    if pending is None:
        raise RuntimeError("after_commit needs a connection from dunning.store.uow.transaction()")
    pending.append(callback)


@contextmanager
def statements(engine: Engine) -> Iterator[Connection]:
    """A connection on which each ``with conn.begin():`` block commits on its own.

    On PostgreSQL the connection autocommits, so a block of one statement costs one round trip
    (no ``BEGIN``/``COMMIT``), for the hot paths that write one statement at a time; on SQLite
    the blocks are real transactions (its ``BEGIN IMMEDIATE`` takes the write lock).
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn
