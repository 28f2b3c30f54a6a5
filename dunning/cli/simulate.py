"""``dunning simulate`` and ``dunning demo``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress
from rich.table import Table

from dunning.cli.common import EXIT_USAGE, Exit, console, container, err_console
from dunning.errors import ConfigError, UsageError


def _render_timeline(out: list[dict[str, Any]]) -> None:
    table = Table("at", "kind", "what", title="timeline", show_lines=False)
    for line in out[:-1]:
        details = ", ".join(
            f"{k}={v}"
            for k, v in line.items()
            if k not in ("at", "kind") and v not in (None, [], "")
        )
        table.add_row(line["at"], line["kind"], details)
    console.print(table)
    summary = out[-1]
    totals = Table("figure", "value", title=f"summary at {summary['at']}")
    totals.add_row("charge attempts", str(summary["attempts"]))
    for kind, n in summary["emails"].items():
        totals.add_row(f"emails: {kind}", str(n))
    for cur, amount in summary["recovered"].items():
        totals.add_row(f"recovered {cur}", f"{amount / 100:.2f}")
    for cur, amount in summary["lost"].items():
        totals.add_row(f"lost {cur}", f"{amount / 100:.2f}")
    for status, n in summary["subscriptions"].items():
        totals.add_row(f"subscriptions {status}", str(n))
    console.print(totals)


def _check_policy_overrides(overrides: dict[str, Any]) -> None:
    """The scenario's ``policy`` overrides, checked against the policy file before running."""
    from dunning.policy_file import load_policy_book

    policy_file = container().settings.policy_file
    logging.disable(logging.WARNING)  # the run itself says the policy's warnings, once
    try:
        load_policy_book(policy_file)  # a bad file is a configuration error, not the scenario's
        try:
            load_policy_book(policy_file, overrides=overrides)
        except ConfigError as exc:
            lines = str(exc).splitlines()
            raise UsageError(
                "bad scenario:\n  " + "\n  ".join(f"policy.{x}" for x in lines)
            ) from None
    finally:
        logging.disable(logging.NOTSET)


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate_cmd(
        scenario: Path = typer.Argument(
            ..., help="Scenario JSON (format: docs/scenario-format.md)."
        ),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
        step: str = typer.Option("1h", "--step", help="Clock step: 15m or 1h."),
    ) -> None:
        """Run a scenario through the real pipeline under a virtual clock."""
        from dunning.simulate.runner import parse_step, run
        from dunning.simulate.scenario import load_scenario

        try:
            delta = parse_step(step)
        except ValueError as exc:
            err_console.print(f"--step: {exc}")
            raise Exit(EXIT_USAGE) from None
        parsed = load_scenario(scenario)
        _check_policy_overrides(parsed.policy)
        if as_json:
            for line in run(parsed, step=delta):
                print(json.dumps(line, sort_keys=False))
            return
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("simulating", total=None)
            out = run(
                parsed, step=delta, progress=lambda i, n: bar.update(task, completed=i, total=n)
            )
        _render_timeline(out)

    @app.command("demo")
    def demo_cmd(
        customers: int = typer.Option(2000, "--customers", min=1, help="Size of the book."),
        days: int = typer.Option(60, "--days", min=1, help="Days to simulate."),
        report: Path | None = typer.Option(None, "--report", help="Write an HTML report."),
        seed: int = typer.Option(
            7, "--seed", help="Seed of the generated book and the outcome model's draws."
        ),
        workdir: Path = typer.Option(
            Path("var/demo"),
            "--dir",
            help="Where the default policy's database and .eml outbox are kept (replaced).",
        ),
    ) -> None:
        """Generate a realistic book and simulate it under three policies: what dunning
        recovers, and what to explore next."""
        from dunning.simulate.demo import run_demo

        run_demo(customers=customers, days=days, report=report, seed=seed, workdir=workdir)
