"""``dunning status`` and ``dunning invoice show|retry|pause|resume|mark-paid|write-off``."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select

from dunning.bootstrap import Container
from dunning.cli.common import ByOpt, ReasonOpt, audited_as, console, print_json, with_database
from dunning.errors import InvalidTransition, NotFound
from dunning.model import InvoiceStatus, check_transition
from dunning.ops import present
from dunning.ops.funnel import funnel
from dunning.ops.invoice_view import invoice_tables, when
from dunning.ops.timeline import invoice_report
from dunning.services import operator
from dunning.store.tables import invoices

JsonOpt = typer.Option(False, "--json", help="One JSON object, for scripts.")

HELP = {
    "retry": "Queue a charge for the next retry scan (network limits still apply).",
    "pause": "Hold retries and reminders.",
    "resume": "Lift a pause.",
    "mark-paid": "Record a payment made elsewhere: paid, reactivated, receipt sent.",
    "write-off": "Give up: uncollectible, no more retries or reminders.",
}
DONE = {
    "retry": "retry queued, not made yet: {when}, network limits permitting; "
    "`dunning invoice show` tells how it went",
    "pause": "paused: no retries or reminders until it is resumed",
    "resume": "resumed: retries and reminders are due again at their times",
    "mark-paid": "marked paid: its subscription is active and a receipt is queued",
    "write-off": "written off: no more retries, reminders or emails",
}
# The state an action moves an invoice to, where the lifecycle decides whether it may.
TARGET = {"mark-paid": InvoiceStatus.paid, "write-off": InvoiceStatus.uncollectible}
VERB = {"mark-paid": "marked paid", "write-off": "written off"}


def register(app: typer.Typer) -> None:
    """Add ``status`` and the ``invoice`` command family to ``app``."""

    @app.command("status")
    def status_cmd(as_json: bool = JsonOpt) -> None:
        """The dunning funnel, amounts per currency, backlogs and producer lag."""
        with with_database() as c, c.engine.connect() as conn:
            f = funnel(conn, c.policy, c.clock.now())
        if as_json:
            print_json(f.as_dict())
        else:
            for table in present.funnel_tables(f):
                console.print(table)

    inv = typer.Typer(help="One invoice: its timeline, and operator actions.", no_args_is_help=True)

    @inv.command("show")
    def show_cmd(invoice_id: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
        """The invoice, its customer and card, attempts and audit timeline."""
        with with_database() as c, c.engine.connect() as conn:
            _require(conn, invoice_id)
            report = invoice_report(conn, invoice_id)
        if as_json:
            print_json(report)
        else:
            for part in invoice_tables(report):
                console.print(part)

    for action in operator.ACTIONS:
        inv.command(action, help=HELP[action])(_action_command(action))
    app.add_typer(inv, name="invoice")


def _require(conn: Any, invoice_id: str) -> Any:
    row = conn.execute(select(invoices).where(invoices.c.id == invoice_id)).mappings().first()
    if row is None:
        raise NotFound(f"invoice {invoice_id!r} does not exist")
    return row


def _refusal(action: str, row: Any) -> str | None:
    """Why ``action`` cannot apply to the invoice as it is, in words; ``None`` if it can."""
    status = InvoiceStatus(row["status"])
    if action == "mark-paid" and status is InvoiceStatus.paid:
        return f"invoice {row['id']!r} is already paid (at {when(row['paid_at'])}): nothing to do"
    target = TARGET.get(action)
    if target is None:
        return None
    try:
        check_transition(status, target)
    except InvalidTransition:
        return f"invoice {row['id']!r} is {status.value}: it cannot be {VERB[action]}"
    return None


def _apply(c: Container, action: str, invoice_id: str, reason: str, who: str) -> None:
    with c.engine.connect() as conn:
        refusal = _refusal(action, _require(conn, invoice_id))
    if refusal:
        raise InvalidTransition(refusal)
    if not _in_process_broker(c):
        from workers.broker import setup

        setup(c)  # the action's messages (a retry's charge) go to the workers at once
    operator.apply(c, action, invoice_id, c.clock.now(), reason=reason, by=who)


def _in_process_broker(c: Container) -> bool:
    return c.settings.broker_url.startswith("stub://")


def _when(c: Container) -> str:
    """When a queued retry is charged, as this deployment runs."""
    if not _in_process_broker(c):
        return "a worker charges it in a moment"
    # The embedded default's broker lives in the `dunning run` process: the retry waits for
    # that process's retry scan to claim it again.
    return f"`dunning run` charges it within {_span(c.settings.timing.claim_lease_s)}"


def _span(seconds: float) -> str:
    s = round(seconds)
    if s % 3600 == 0:
        return "an hour" if s == 3600 else f"{s // 3600} hours"
    if s % 60 == 0:
        return "a minute" if s == 60 else f"{s // 60} minutes"
    return f"{s} seconds"


def _action_command(action: str) -> Any:
    def command(
        invoice_id: str = typer.Argument(...),
        reason: str = ReasonOpt,
        by: str | None = ByOpt,
    ) -> None:
        who = audited_as(reason, by)
        with with_database() as c:
            _apply(c, action, invoice_id, reason, who)
            done = DONE[action].format(when=_when(c))
        console.print(f"invoice {invoice_id}: {done} (by {who})", highlight=False, soft_wrap=True)

    command.__name__ = f"invoice_{action.replace('-', '_')}"
    return command
