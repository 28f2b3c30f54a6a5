"""``import_file`` with the pipeline that takes over the imported invoices in dunning, wired on
the test's engine (as ``dunning import`` wires its container)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from config.settings import load_settings
from dunning.bootstrap import bootstrap
from dunning.imports import ImportReport, import_file


def load(engine: Engine, path: str | Path, **kwargs: Any) -> ImportReport:
    """Import ``path`` into ``engine``'s database, as ``dunning import`` does."""
    url = engine.url.render_as_string(hide_password=False)
    c = bootstrap(load_settings(database_url=url), engine=engine)
    try:
        return import_file(engine, path, pipeline=c, **kwargs)
    finally:
        c.close()
