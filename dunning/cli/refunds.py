"""``dunning refunds list|done``: money collected that was not owed, waiting to be refunded."""

from __future__ import annotations

import getpass

import typer
from rich.table import Table

from dunning.cli.common import console, print_json, with_database
from dunning.mail.formatting import money
from dunning.ops import overpayments
from dunning.ops.timeline import iso
from dunning.store.uow import transaction


def _table(rows: list[overpayments.Overpayment]) -> Table:
    table = Table("id", "invoice", "amount", "why", "charge", "found", title="refunds due")
    for o in rows:
        why = "paid twice" if o.reason == "paid_twice" else f"invoice {o.invoice_status}"
        table.add_row(
            str(o.id), o.invoice_id, money(o.amount, o.currency, "en") or "", why,
            o.gateway_charge_id or o.attempt_key or "", iso(o.found_at),
        )  # fmt: skip
    return table


def register(app: typer.Typer) -> None:
    refunds = typer.Typer(
        help="Charges that collected money not owed (an invoice already paid or void).",
        no_args_is_help=True,
    )

    @refunds.command("list")
    def list_cmd(
        everything: bool = typer.Option(False, "--all", help="Refunded ones too."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """What waits for a refund, oldest first."""
        with with_database() as c, c.engine.connect() as conn:
            rows = overpayments.listed(conn, due_only=not everything)
        if as_json:
            print_json([o.as_dict() for o in rows])
        elif not rows:
            console.print("nothing waits for a refund")
        else:
            console.print(_table(rows))

    @refunds.command("done")
    def done_cmd(
        overpayment_id: int = typer.Argument(..., help="The id from 'dunning refunds list'."),
        note: str = typer.Option(..., "--note", help="How it was refunded (e.g. the refund id)."),
        by: str = typer.Option(getpass.getuser(), "--by", help="Who refunded it."),
    ) -> None:
        """Record that an overpayment was refunded (audited)."""
        with with_database() as c, transaction(c.engine) as conn:
            overpayments.mark_refunded(conn, overpayment_id, c.clock.now(), by=by, note=note)
        console.print(f"overpayment {overpayment_id} marked refunded")

    app.add_typer(refunds, name="refunds")
