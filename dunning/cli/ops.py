"""Operator commands: ``queues``, ``dlq list|requeue|purge``, ``status``, ``invoice …``."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from dunning.bootstrap import Container
from dunning.broker_names import QUEUES
from dunning.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    Exit,
    console,
    container,
    err_console,
    print_json,
)
from dunning.ops import present
from dunning.ops.brokers import BrokerUnavailable, reading
from dunning.ops.funnel import funnel
from dunning.ops.timeline import invoice_report
from dunning.services import operator

QueueOpt = typer.Option(None, "--queue", "-q", help="Only this queue.")
ActorOpt = typer.Option(None, "--actor", "-a", help="Only messages of this actor.")
JsonOpt = typer.Option(False, "--json", help="One JSON object, for scripts.")


@contextmanager
def opened() -> Iterator[Container]:
    """The container for one command, its database connections closed at the end."""
    c = container()
    try:
        yield c
    finally:
        c.close()


def _now_ms(c: Container) -> int:
    return int(c.clock.now().timestamp() * 1000)


def _no_queues(as_json: bool) -> None:
    """Say that the in-process stub broker has nothing to read."""
    if as_json:
        print_json({"broker": "stub", "queues": [], "dead_letters": []})
    else:
        console.print(
            "stub broker (the embedded default): its queues live inside the running "
            "process; nothing to read here"
        )


def _queues(only: str | None) -> tuple[str, ...]:
    if only is None:
        return QUEUES
    if only not in QUEUES:
        err_console.print(f"[red]unknown queue {only!r}[/]; queues: {', '.join(QUEUES)}")
        raise Exit(EXIT_USAGE)
    return (only,)


def _broker_down(exc: BrokerUnavailable) -> Exit:
    err_console.print(f"[red]{exc}[/]")
    return Exit(EXIT_FAILURE)


def _dlq_action(action: str, queue: str | None, actor: str | None, as_json: bool) -> None:
    queues = _queues(queue)
    with opened() as c:
        now_ms = _now_ms(c)
        try:
            with reading(c.settings) as view:
                if view is None:
                    return _no_queues(as_json)
                if action == "list":
                    letters = view.dead(queues, now_ms=now_ms, actor=actor)
                elif action == "requeue":
                    count = view.requeue(queues, now_ms=now_ms, actor=actor)
                else:
                    count = view.purge(queues, actor=actor)
        except BrokerUnavailable as exc:
            raise _broker_down(exc) from None
    if action == "list":
        if as_json:
            print_json({"broker": view.kind, "dead_letters": [d.as_dict(now_ms) for d in letters]})
        else:
            console.print(present.dead_table(letters, now_ms))
    elif as_json:
        print_json({action + "d": count})
    else:
        verb = "moved back to their queues" if action == "requeue" else "deleted"
        console.print(f"{count} dead letter(s) {verb}")
    return None


def register(app: typer.Typer) -> None:
    @app.command("queues")
    def queues_cmd(as_json: bool = JsonOpt) -> None:
        """Ready, delayed, in-flight and dead messages per queue, and the oldest ready age."""
        with opened() as c:
            try:
                with reading(c.settings) as view:
                    if view is None:
                        return _no_queues(as_json)
                    stats = view.queues(QUEUES, now_ms=_now_ms(c))
            except BrokerUnavailable as exc:
                raise _broker_down(exc) from None
        if as_json:
            print_json({"broker": view.kind, "queues": [s.as_dict() for s in stats]})
        else:
            console.print(present.queues_table(stats))
        return None

    dlq = typer.Typer(help="Dead letters: messages whose retries ran out.", no_args_is_help=True)

    @dlq.command("list")
    def dlq_list(
        queue: str | None = QueueOpt, actor: str | None = ActorOpt, as_json: bool = JsonOpt
    ) -> None:
        """Show dead letters: id, actor, queue, age, arguments (no secrets), last error."""
        _dlq_action("list", queue, actor, as_json)

    @dlq.command("requeue")
    def dlq_requeue(
        queue: str | None = QueueOpt, actor: str | None = ActorOpt, as_json: bool = JsonOpt
    ) -> None:
        """Move dead letters back to their queue to be processed again."""
        _dlq_action("requeue", queue, actor, as_json)

    @dlq.command("purge")
    def dlq_purge(
        queue: str | None = QueueOpt, actor: str | None = ActorOpt, as_json: bool = JsonOpt
    ) -> None:
        """Delete dead letters for good."""
        _dlq_action("purge", queue, actor, as_json)

    app.add_typer(dlq, name="dlq")

    @app.command("status")
    def status_cmd(as_json: bool = JsonOpt) -> None:
        """The dunning funnel, amounts per currency, backlogs and producer lag."""
        with opened() as c, c.engine.connect() as conn:
            f = funnel(conn, c.policy, c.clock.now())
        if as_json:
            print_json(f.as_dict())
        else:
            for table in present.funnel_tables(f):
                console.print(table)

    _register_invoice(app)


def _register_invoice(app: typer.Typer) -> None:
    inv = typer.Typer(help="One invoice: its timeline, and operator actions.", no_args_is_help=True)

    @inv.command("show")
    def show_cmd(invoice_id: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
        """The invoice, its customer and card, attempts and audit timeline."""
        with opened() as c, c.engine.connect() as conn:
            report = invoice_report(conn, invoice_id)
        if as_json:
            print_json(report)
        else:
            for table in present.invoice_tables(report):
                console.print(table)

    for action in operator.ACTIONS:
        inv.command(action, help=_HELP[action])(_action_command(action))
    app.add_typer(inv, name="invoice")


_HELP = {
    "retry": "Charge again at the next retry scan (network limits still apply).",
    "pause": "Hold retries and reminders.",
    "resume": "Lift a pause.",
    "mark-paid": "Record a payment made elsewhere: paid, reactivated, receipt sent.",
    "write-off": "Give up: uncollectible, no more retries or reminders.",
}


def _action_command(action: str) -> Any:
    def command(
        invoice_id: str = typer.Argument(...),
        reason: str = typer.Option(..., "--reason", "-r", help="Why; kept in the audit log."),
        by: str | None = typer.Option(None, "--by", help="Who (default: the login name)."),
    ) -> None:
        if not reason.strip():
            err_console.print("[red]--reason must say why[/]")
            raise Exit(EXIT_USAGE)
        who = by or getpass.getuser()
        with opened() as c:
            operator.apply(c, action, invoice_id, c.clock.now(), reason=reason, by=who)
        console.print(f"invoice {invoice_id}: {action} done (by {who})")

    command.__name__ = f"invoice_{action.replace('-', '_')}"
    return command
