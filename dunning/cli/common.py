"""What every command shares: exit codes, the container, console output."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import typer
from rich.console import Console

from config.settings import Settings
from dunning.bootstrap import Container, bootstrap
from dunning.store.readiness import require_database

DEFAULT_DATABASE_URL: str = Settings.model_fields["database_url"].default
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

console = Console()
err_console = Console(stderr=True)

ReasonOpt = typer.Option(..., "--reason", "-r", help="Why; kept in the audit log.")
ByOpt = typer.Option(None, "--by", help="Who (default: the login name).")


class Exit(Exception):
    """Stop a command with an exit code (after it has said why)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def audited_as(reason: str, by: str | None) -> str:
    """Who an operator action is audited as (``--by``, else the login name), once ``--reason``
    says why (else exit code 2)."""
    if not reason.strip():
        err_console.print("error: --reason must say why", markup=False)
        raise Exit(EXIT_USAGE)
    return by or getpass.getuser()


def is_default_database(c: Container) -> bool:
    """Whether ``c`` uses the embedded default's SQLite file (``./var/``), the one database
    ``dunning db upgrade`` and ``dunning run`` create with its folder."""
    return c.settings.database_url == DEFAULT_DATABASE_URL


def ready(c: Container) -> Container:
    """``c``, once its database exists, answers and has the newest schema (else
    :class:`~dunning.store.readiness.DatabaseNotReady`, exit code 2)."""
    require_database(c.engine, default=is_default_database(c))
    return c


def container() -> Container:
    """Load settings and wire the container; a bad setting stops with exit code 2."""
    return bootstrap()


@contextmanager
def with_database() -> Iterator[Container]:
    """The container of a command that reads or writes the database, closed at the end.

    The database must exist, answer and have the newest schema: otherwise the command stops
    before doing anything, with one line saying how to fix it (exit code 2).
    """
    c = container()
    try:
        yield ready(c)
    finally:
        c.close()


def _plain(value: Any) -> Any:
    # Times as ISO 8601 (``2026-03-02T10:00:00+00:00``), anything else as its text.
    return value.isoformat() if isinstance(value, datetime) else str(value)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_plain, sort_keys=True) + "\n")
