"""What to explore after ``dunning demo``: the emails, the report, the pipeline running on the
demo's database with a card-update link ready to open, the operators' view."""

from __future__ import annotations

import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import select

from config.settings import DEFAULT_SECRET, Settings, load_settings
from dunning.bootstrap import bootstrap
from dunning.services.notify import link_for, link_url
from dunning.simulate.demo_run import DATABASE, EXAMPLES, OUTBOX
from dunning.simulate.words import money
from dunning.store.tables import customers, invoices, subscriptions


def shown(path: Path) -> str:
    """``path`` relative to here when it is below here, else whole."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def program() -> str:
    """How to call ``dunning`` from here: the virtualenv's script when that is what runs."""
    script = Path(sys.executable).with_name("dunning")
    return shown(script) if script.exists() else "dunning"


def _env(workdir: Path) -> str:
    return (
        f"DUNNING_DATABASE_URL=sqlite:///{workdir / DATABASE} "
        f"DUNNING_OUTBOX_DIR={shlex.quote(str(workdir / OUTBOX))}"
    )


def _open_invoice(workdir: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A customer with an open invoice on a live subscription, and that invoice."""
    settings = load_settings(database_url=f"sqlite:///{workdir / DATABASE}")
    c = bootstrap(settings)
    try:
        with c.engine.connect() as conn:
            row = (
                conn.execute(
                    select(customers, invoices.c.amount, invoices.c.currency)
                    .join(invoices, invoices.c.customer_id == customers.c.id)
                    .join(subscriptions, subscriptions.c.id == invoices.c.subscription_id)
                    .where(invoices.c.status == "open", subscriptions.c.status != "cancelled")
                    .order_by(invoices.c.first_failed_at.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            ref = link_for(c, row, "update_card", datetime.now(UTC))
            link = link_url(c, row["id"], ref)
        return dict(row), {"link": link, "ttl_h": settings.link_ttl_s / 3600}
    finally:
        c.close()


def _ops(settings: Settings) -> str:
    default = settings.ops.password.get_secret_value() == DEFAULT_SECRET
    password = f'"{DEFAULT_SECRET}" (the development default)' if default else (
        "the value of DUNNING_OPS__PASSWORD")  # fmt: skip
    return (
        f"{settings.public_base_url.rstrip('/')}/ops, user {settings.ops.username}, "
        f"password {password}"
    )


def next_steps(console: Console, workdir: Path, *, report: Path | None) -> None:
    """Print where the demo's results are and what to run next (links and commands whole,
    so they can be copied)."""
    dunning, env = program(), _env(workdir)
    emails = len(list((workdir / OUTBOX).glob("*.eml")))
    drawn = f"written to {report}" if report else f"{dunning} demo --report demo.html"
    lines = [
        f"[bold]What the demo left in {workdir}/[/] (the default policy's run; the next demo "
        "replaces it)",
        f"  database   {workdir / DATABASE}",
        f"  emails     {workdir / OUTBOX}/: {emails:,} .eml files, one per email sent; open "
        "any in a mail client",
        f"  report     {drawn}",
        f"  run it     {env} {dunning} run",
    ]
    found = _open_invoice(workdir)
    if found is not None:
        cust, link = found
        owed = f"{cust['currency']} {money(cust['amount'], cust['currency'])}"
        lines += [
            f"  card page  while it runs, customer {cust['id']}'s link (an open invoice of "
            f"{owed}; valid {link['ttl_h'] / 24:.0f} days):",
            f"             {link['link']}",
        ]
    examples = shown(EXAMPLES / "stripe-like.toml")
    lines += [
        f"  operators  {_ops(load_settings())}",
        f"  compare    {env} {dunning} whatif --policy default --policy {examples}",
        "             (the demo's invoices under two policies; for your own book see "
        "docs/whatif.md)",
    ]
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)
