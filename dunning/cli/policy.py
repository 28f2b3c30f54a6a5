"""``dunning policy show|check``: the effective dunning policy, and a policy file's validity."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from dunning.cli.common import (
    EXIT_USAGE,
    Exit,
    console,
    container,
    err_console,
    print_json,
    ready,
)
from dunning.errors import ConfigError, DunningError, UsageError
from dunning.policy.config import INTERVALS, PolicyBook
from dunning.policy_file import load_policy_book
from dunning.store.tables import subscriptions


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


@contextmanager
def _warnings_said_once() -> Iterator[None]:
    """Loading a policy book logs its warnings; these commands print them themselves, once."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _check_names(book: PolicyBook, plan: str | None, interval: str | None) -> None:
    if interval is not None and interval not in INTERVALS:
        raise UsageError(f"unknown interval {interval!r}; intervals: {', '.join(INTERVALS)}")
    if plan is not None and plan not in book.plans and plan not in _plans_in_use():
        known = ", ".join(sorted(book.plans)) or "none"
        raise UsageError(
            f"unknown plan {plan!r}: no subscription has it and {book.source} has no section "
            f"for it (plans with one: {known})"
        )


def _plans_in_use() -> set[str]:
    """The plans of the stored subscriptions; none when there is no usable database."""
    c = container()
    try:
        with ready(c).engine.connect() as conn:
            return set(conn.execute(select(subscriptions.c.plan).distinct()).scalars())
    except (ConfigError, DunningError, SQLAlchemyError):  # a missing or unmigrated database
        return set()
    finally:
        c.close()


def _show(book: PolicyBook, plan: str | None, interval: str | None, as_json: bool) -> None:
    _check_names(book, plan, interval)
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
        with _warnings_said_once():
            book = container().policy
        _show(book, plan, interval, as_json)

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
            with _warnings_said_once():
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
