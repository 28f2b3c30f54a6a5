"""Reaching the real services in tests: skip on a laptop without them, fail when CI=true."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get(
    "DUNNING_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("DUNNING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need(service: str, host: str, port: int) -> None:
    """Skip the test when ``service`` is down, except in CI, where that is a failure."""
    if reachable(host, port):
        return
    message = f"{service} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(message + " (CI=true: integration tests must not skip)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def scratch_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; dropped afterwards. Yields its URL."""
    import psycopg

    need("PostgreSQL", "127.0.0.1", 5432)
    name = "dunning_t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
