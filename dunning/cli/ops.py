"""Operator commands on the broker: ``queues`` and ``dlq list|requeue|purge``.

``dlq list`` also shows the gateway webhook events that failed for good (they are rows in the
database, not messages), and ``dlq requeue`` offers them to the worker again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from sqlalchemy.exc import SQLAlchemyError

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
from dunning.store import inbox

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


def _no_queues(as_json: bool, events: list[inbox.FailedEvent] | int | None = None) -> None:
    """Say that the in-process stub broker has nothing to read (failed gateway events are in
    the database, and shown all the same)."""
    if as_json:
        print_json({"broker": "stub", "queues": [], "dead_letters": []} | _events_json(events))
    else:
        console.print(
            "stub broker (the embedded default): its queues live inside the running "
            "process; nothing to read here"
        )
        _print_events(events)


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
        events = _failed_events(c, action, queues, actor)
        try:
            with reading(c.settings) as view:
                if view is None:
                    return _no_queues(as_json, events)
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
            print_json(
                {"broker": view.kind, "dead_letters": [d.as_dict(now_ms) for d in letters]}
                | _events_json(events)
            )
        else:
            console.print(present.dead_table(letters, now_ms))
            _print_events(events)
    elif as_json:
        print_json({action + "d": count} | _events_json(events))
    else:
        verb = "moved back to their queues" if action == "requeue" else "deleted"
        console.print(f"{count} dead letter(s) {verb}")
        _print_events(events)
    return None


def _failed_events(
    c: Container, action: str, queues: tuple[str, ...], actor: str | None
) -> list[inbox.FailedEvent] | int | None:
    """Gateway events that failed for good, listed or put back as ``received`` (``requeue``);
    ``None`` when the command is not about them (another queue or actor, or ``purge``: they
    are records of what a gateway sent, kept)."""
    if action == "purge" or "events" not in queues or actor not in (None, "process_events"):
        return None
    try:
        with c.engine.begin() as conn:
            return inbox.failed(conn) if action == "list" else inbox.requeue_failed(conn)
    except SQLAlchemyError as exc:  # the broker's dead letters are still worth showing
        first = str(exc).splitlines()[0]
        err_console.print(f"cannot read failed gateway events: {first}", markup=False)
        return None


def _events_json(events: list[inbox.FailedEvent] | int | None) -> dict[str, Any]:
    if events is None:
        return {}
    if isinstance(events, int):
        return {"requeued_events": events}
    return {"failed_events": [e.as_dict() for e in events]}


def _print_events(events: list[inbox.FailedEvent] | int | None) -> None:
    if isinstance(events, int):
        console.print(f"{events} failed gateway event(s) offered to the worker again")
    elif events:
        console.print(present.failed_events_table(events))


def register(app: typer.Typer) -> None:
    """Add ``queues`` and the ``dlq`` command family to ``app``."""
    app.command("queues")(queues_cmd)
    app.add_typer(_dlq_app(), name="dlq")


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


def _dlq_app() -> typer.Typer:
    dlq = typer.Typer(help="Dead letters: messages whose retries ran out.", no_args_is_help=True)

    @dlq.command("list")
    def dlq_list(
        queue: str | None = QueueOpt, actor: str | None = ActorOpt, as_json: bool = JsonOpt
    ) -> None:
        """Show dead letters: id, actor, queue, age, arguments (no secrets), last error; and
        the gateway events that failed for good, with their error."""
        _dlq_action("list", queue, actor, as_json)

    @dlq.command("requeue")
    def dlq_requeue(
        queue: str | None = QueueOpt, actor: str | None = ActorOpt, as_json: bool = JsonOpt
    ) -> None:
        """Move dead letters back to their queue to be processed again, and offer the gateway
        events that failed for good to the worker again (once their cause is fixed)."""
        _dlq_action("requeue", queue, actor, as_json)

    @dlq.command("purge")
    def dlq_purge(
        queue: str | None = QueueOpt,
        actor: str | None = ActorOpt,
        as_json: bool = JsonOpt,
        yes: bool = typer.Option(False, "--yes", help="Really delete them (nothing asks)."),
    ) -> None:
        """Delete dead letters for good (needs --yes; `dlq list` shows what would go)."""
        if not yes:
            err_console.print(
                "error: purge deletes dead letters for good; read them with `dunning dlq "
                "list`, then run again with --yes",
                markup=False,
                soft_wrap=True,
            )
            raise Exit(EXIT_USAGE)
        _dlq_action("purge", queue, actor, as_json)

    return dlq
