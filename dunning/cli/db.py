"""``dunning db upgrade``: migrate the database (SQLite and PostgreSQL alike)."""

from __future__ import annotations

import typer

from dunning.cli.common import console, container
from dunning.store.migrate import current_revision, upgrade


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="Database schema.", no_args_is_help=True)

    @db_app.command("upgrade")
    def upgrade_cmd() -> None:
        """Apply every migration up to the newest."""
        c = container()
        upgrade(c.engine)
        console.print(f"database at revision [bold]{current_revision(c.engine)}[/]")

    app.add_typer(db_app, name="db")
