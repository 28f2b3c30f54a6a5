"""``dunning db upgrade``: migrate the database (SQLite and PostgreSQL alike)."""

from __future__ import annotations

import typer

from dunning.cli.common import console, container, is_default_database
from dunning.store.migrate import current_revision, upgrade
from dunning.store.readiness import create_sqlite_folder, require_reachable


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="Database schema.", no_args_is_help=True)

    @db_app.command("upgrade")
    def upgrade_cmd() -> None:
        """Apply every migration up to the newest (creates the embedded default's SQLite file)."""
        c = container()
        try:
            if is_default_database(c):
                create_sqlite_folder(c.engine.url)
            require_reachable(c.engine)
            upgrade(c.engine)
            console.print(f"database at revision [bold]{current_revision(c.engine)}[/]")
        finally:
            c.close()

    app.add_typer(db_app, name="db")
