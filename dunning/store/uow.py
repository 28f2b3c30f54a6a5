"""Transactions whose follow-up work (enqueueing) runs only once they are committed.

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

    Outside :func:`transaction` the callback is dropped: the producers find the work anyway.
    """
    pending = conn.info.get(_KEY)
    if pending is not None:
        pending.append(callback)
