"""``dunning customer show|pause|resume``: a customer's dunning state, and the operator's hold on
all of its invoices (the same service as the ``/ops`` invoice page's customer pause)."""

from __future__ import annotations

from typing import Any

import typer

from dunning.cli.common import ByOpt, ReasonOpt, audited_as, console, print_json, with_database
from dunning.errors import NotFound
from dunning.ops.customer_view import customer_report, customer_tables
from dunning.services.customer_pause import apply_customer
from dunning.store import rows
from dunning.store.tables import customers

JsonOpt = typer.Option(False, "--json", help="One JSON object, for scripts.")

HELP = {
    "pause": "Hold retries and reminders of all the customer's invoices, new ones included.",
    "resume": "Lift the customer's pause; retries and reminders that fell due run at once.",
}
DONE = {
    "pause": "paused: none of its invoices is charged or reminded until it is resumed",
    "resume": "resumed: retries and reminders are due again at their times",
}


def register(app: typer.Typer) -> None:
    """Add the ``customer`` command family to ``app``."""
    cust = typer.Typer(
        help="One customer: its dunning state, pause and resume.", no_args_is_help=True
    )

    @cust.command("show")
    def show_cmd(customer_id: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
        """Whether dunning is paused for the customer, and the invoices it owes."""
        with with_database() as c, c.engine.connect() as conn:
            _require(conn, customer_id)
            report = customer_report(conn, c.policy, customer_id, c.clock.now())
        if as_json:
            print_json(report)
        else:
            for part in customer_tables(report):
                console.print(part)

    for action in ("pause", "resume"):
        cust.command(action, help=HELP[action])(_action_command(action))
    app.add_typer(cust, name="customer")


def _require(conn: Any, customer_id: str) -> None:
    if rows.find(conn, customers, customer_id) is None:
        raise NotFound(f"customer {customer_id!r} does not exist")


def _action_command(action: str) -> Any:
    def command(
        customer_id: str = typer.Argument(...),
        reason: str = ReasonOpt,
        by: str | None = ByOpt,
    ) -> None:
        who = audited_as(reason, by)
        with with_database() as c:
            with c.engine.connect() as conn:
                _require(conn, customer_id)
            now = c.clock.now()
            apply_customer(c, f"{action}-customer", customer_id, now, reason=reason, by=who)
        done = DONE[action]
        console.print(f"customer {customer_id}: {done} (by {who})", highlight=False, soft_wrap=True)

    command.__name__ = f"customer_{action}"
    return command
