"""``dunning policy show|check``: the effective dunning policy, and a policy file's validity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from dunning.cli.common import EXIT_USAGE, Exit, console, container, err_console, print_json
from dunning.errors import ConfigError
from dunning.policy.config import PolicyBook
from dunning.policy_file import load_policy_book


def _toml_value(value: Any) -> str:
    # JSON spells strings, numbers, booleans and lists of them the way TOML does.
    return json.dumps(value)


def _key(key: str) -> str:
    return key if key.isidentifier() else json.dumps(key)


def _render(table: dict[str, Any], path: str = "") -> list[str]:
    """The effective policy as TOML text, sections in file order."""
    lines = [f"{_key(k)} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    if lines and path:
        lines = ["", f"[{path}]", *lines]
    for key, value in table.items():
        if isinstance(value, dict):
            lines += _render(value, f"{path}.{_key(key)}" if path else _key(key))
    return lines


def _show(book: PolicyBook, plan: str | None, interval: str | None, as_json: bool) -> None:
    effective = book.as_dict(plan, interval)
    if as_json:
        print_json(
            {
                "source": book.source,
                "plan": plan,
                "interval": interval,
                "policy": effective,
                "plans": sorted(book.plans),
                "intervals": sorted(book.intervals),
                "warnings": book.warnings,
            }
        )
        return
    header = [f"# effective policy from {book.source}"]
    header.append(f"# plan: {plan or '(default)'}; interval: {interval or '(default)'}")
    if book.plans:
        header.append("# plans with overrides: " + ", ".join(sorted(book.plans)))
    if book.intervals:
        header.append("# intervals with overrides: " + ", ".join(sorted(book.intervals)))
    console.print(
        "\n".join(header + _render(effective)), markup=False, highlight=False, soft_wrap=True
    )
    for warning in book.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``policy`` command family (``show``, ``check``) to ``app``."""
    policy_app = typer.Typer(help="Show or check the dunning policy.", no_args_is_help=True)
    app.add_typer(policy_app, name="policy")

    @policy_app.command("show")
    def show_cmd(
        plan: str | None = typer.Option(None, "--plan", help="Plan name (its overrides apply)."),
        interval: str | None = typer.Option(
            None, "--interval", help="Billing interval (month, year): its overrides apply."
        ),
        as_json: bool = typer.Option(False, "--json", help="One JSON object."),
    ) -> None:
        """Print the effective policy (the policy file is DUNNING_POLICY_FILE)."""
        _show(container().policy, plan, interval, as_json)

    @policy_app.command("check")
    def check_cmd(
        file: Annotated[
            Path | None,
            typer.Argument(help="Policy file to validate (default: DUNNING_POLICY_FILE)."),
        ] = None,
    ) -> None:
        """Validate a policy file: exit 0 when valid, 2 naming each bad key."""
        path = file if file is not None else container().settings.policy_file
        try:
            book = load_policy_book(path)
        except ConfigError as exc:
            err_console.print(
                f"{path}: invalid policy file", markup=False, highlight=False, soft_wrap=True
            )
            err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            raise Exit(EXIT_USAGE) from None
        for warning in book.warnings:
            err_console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"{path}: ok", markup=False, highlight=False, soft_wrap=True)
