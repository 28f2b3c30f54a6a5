"""``dunning check``: is every dependency reachable and the schema current?"""

from __future__ import annotations

import typer
from rich.table import Table

from dunning.cli.common import EXIT_FAILURE, Exit, console, container, print_json
from dunning.health import check_stripe, run_checks


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check_cmd(as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
        """Report each dependency (database, migrations, broker, SMTP; on Stripe, the API and
        whether Stripe's own retries and emails are off) as ok or failing."""
        c = container()
        try:
            results = [*run_checks(c), *check_stripe(c)]
        finally:
            c.close()
        if as_json:
            print_json({r.name: {"ok": r.ok, "detail": r.detail} for r in results})
        else:
            table = Table("dependency", "state", "detail")
            for r in results:
                table.add_row(r.name, "[green]ok[/]" if r.ok else "[red]failing[/]", r.detail)
            console.print(table)
        if not all(r.ok for r in results):
            raise Exit(EXIT_FAILURE)
