"""Can this database be used? Missing, unreachable and unmigrated databases, each said in one
line that names the problem and the fix.

Commands and daemons that read or write the database call :func:`require_database` before they
start, so a forgotten ``dunning db upgrade`` or a mistyped ``DUNNING_DATABASE_URL`` stops them
at once (exit code 2) instead of failing on the first query with a traceback. Nothing here
creates a file or a folder: only ``dunning db upgrade``, ``dunning run`` and ``dunning demo``
create the embedded default's (:func:`create_sqlite_folder`).
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import URL, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from dunning.errors import ConfigError
from dunning.store.migrate import current_revision, head_revision, is_known
from dunning.urls import masked

UPGRADE = "run `dunning db upgrade`"


class DatabaseNotReady(ConfigError):
    """The database is missing, unreachable or not at the newest schema; the message says
    what to do."""


def shown(url: URL) -> str:
    """The URL as configured (no driver name added), its passwords masked (in the user part
    and the query), for messages."""
    return masked(url.set(drivername=url.get_backend_name()).render_as_string(hide_password=False))


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL (``None`` for other databases and in-memory SQLite)."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def reason(exc: BaseException) -> str:
    """The driver's first line about a failure, whitespace collapsed."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return re.sub(r"\s+", " ", text[0]).strip() if text else type(orig).__name__


def require_database(engine: Engine, *, default: bool = False) -> None:
    """Return when the database exists, answers and has the newest schema; otherwise raise
    :class:`DatabaseNotReady` with the fix. ``default``: this is the embedded default's
    SQLite file, which ``dunning db upgrade`` creates with its folder."""
    path = sqlite_file(engine.url)
    if path is not None and not path.is_file():
        if not default:
            _require_folder(path)
        raise DatabaseNotReady(
            f"the database file {path} does not exist: {UPGRADE} to create it "
            "(or fix DUNNING_DATABASE_URL)"
        )
    try:
        current = current_revision(engine)
    except (DBAPIError, PoolTimeout) as exc:
        raise _unreachable(engine, exc) from None
    head = head_revision()
    if current == head:
        return
    where = shown(engine.url)
    if current is None:
        raise DatabaseNotReady(f"the database {where} has no schema yet: {UPGRADE}")
    if not is_known(current):
        raise DatabaseNotReady(
            f"the database {where} is at schema revision {current}, which this version of "
            "dunning does not know (a newer version migrated it): upgrade dunning"
        )
    raise DatabaseNotReady(
        f"the database {where} is at schema revision {current}, this version needs {head}: "
        + UPGRADE
    )


def require_reachable(engine: Engine) -> None:
    """Return when the database answers, or (SQLite) its file can be created in an existing
    folder; what ``dunning db upgrade`` needs before it migrates."""
    path = sqlite_file(engine.url)
    if path is not None:
        _require_folder(path)
    try:
        with engine.connect():
            pass
    except (DBAPIError, PoolTimeout) as exc:
        raise _unreachable(engine, exc) from None


def _require_folder(path: Path) -> None:
    if not path.parent.is_dir():
        raise DatabaseNotReady(
            f"the folder {path.parent} of the database file {path.name} does not exist: "
            "fix DUNNING_DATABASE_URL, or create the folder and " + UPGRADE
        )


def _unreachable(engine: Engine, exc: BaseException) -> DatabaseNotReady:
    return DatabaseNotReady(
        f"cannot use the database {shown(engine.url)}: {reason(exc)}; check "
        "DUNNING_DATABASE_URL and that the database server is running"
    )


def create_sqlite_folder(url: URL) -> None:
    """Create the folder of a SQLite file. Only for the embedded default's (``./var``): a
    mistyped path elsewhere must say so, not grow folders."""
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
