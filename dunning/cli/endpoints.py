"""``dunning endpoints add|list|remove``: the merchant's webhook endpoints."""

from __future__ import annotations

import typer
from rich.table import Table

from dunning.cli.common import console, print_json, with_database
from dunning.ops import endpoints
from dunning.ops.timeline import iso
from dunning.services.outbound import EVENT_TYPES
from dunning.store.uow import transaction
from dunning.webhooks.destinations import endpoint_rules


def register(app: typer.Typer) -> None:
    ep = typer.Typer(
        help="Webhook endpoints of the merchant's application (Standard Webhooks).",
        no_args_is_help=True,
    )
    ep.command("add")(add_cmd)
    ep.command("list")(list_cmd)
    ep.command("remove")(remove_cmd)
    app.add_typer(ep, name="endpoints")


def add_cmd(
    url: str = typer.Argument(
        ...,
        help="Where events are POSTed (https; http outside production); not an internal address.",
    ),
    events: str = typer.Option(
        "",
        "--events",
        help="Comma-separated event types (default: all): " + ", ".join(EVENT_TYPES),
    ),
    secret: str | None = typer.Option(
        None, "--secret", help="whsec_<base64 key>; generated when omitted."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Register an endpoint; prints its signing secret (shown only now)."""
    wanted = [e.strip() for e in events.split(",") if e.strip()]
    with with_database() as c, transaction(c.engine) as conn:
        endpoint_id, key = endpoints.add_endpoint(
            conn, url, c.clock.now(), rules=endpoint_rules(c.settings), events=wanted, secret=secret
        )
    if as_json:
        print_json({"id": endpoint_id, "url": url, "secret": key})
        return
    console.print(f"endpoint {endpoint_id} added for {url}")
    if secret is None:
        console.print(f"signing secret (shown only now): [bold]{key}[/]", highlight=False)


def list_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every endpoint with its status and its waiting and failed events."""
    with with_database() as c, c.engine.connect() as conn:
        rows = endpoints.list_endpoints(conn)
    if as_json:
        print_json({"endpoints": rows})
        return
    table = Table("id", "url", "events", "status", "failing since", "pending", "failed")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["url"],
            ", ".join(r["events"]),
            r["status"],
            iso(r["failing_since"]),
            str(r["pending"]),
            str(r["failed"]),
        )
    console.print(table)


def remove_cmd(endpoint_id: int = typer.Argument(...)) -> None:
    """Stop sending to an endpoint; its undelivered events are cancelled."""
    with with_database() as c, transaction(c.engine) as conn:
        cancelled = endpoints.remove_endpoint(conn, endpoint_id, c.clock.now())
    console.print(f"endpoint {endpoint_id} removed; {cancelled} undelivered event(s) cancelled")
