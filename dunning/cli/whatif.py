"""``dunning whatif``: compare dunning policies on the merchant's own book (docs/whatif.md)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from dunning.cli.common import EXIT_USAGE, Exit, console, err_console, print_json
from dunning.errors import ConfigError

DEFAULT_SAMPLE = 1000
DEFAULT_SEED = 1


def _policy(text: str, base: Path) -> Any:
    from dunning.policy_file import load_policy_book
    from dunning.whatif.replay import PolicySpec

    if text == "default":
        spec = PolicySpec("default", base)
    else:
        path = Path(text)
        try:
            overrides = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"--policy {text}: cannot read it ({exc.strerror or exc})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--policy {text}: not valid TOML ({exc})") from None
        spec = PolicySpec(path.stem, base, overrides)
    try:
        load_policy_book(base, overrides=spec.overrides)  # refuse a bad file before replaying
    except ConfigError as exc:
        raise ConfigError(f"--policy {text}:\n{exc}") from None
    return spec


def _sample(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        err_console.print(f"--sample: a number of invoices or 'all', not {text!r}")
        raise Exit(EXIT_USAGE)
    return int(text)


def _book(path: Path | None, since_days: int) -> Any:
    from dunning.cli.common import container, ready
    from dunning.whatif.book import read_file
    from dunning.whatif.database import read_database

    if path is not None:
        return read_file(path)
    c = ready(container())
    now = datetime.now(UTC)
    return read_database(c.engine, now=now, since=timedelta(days=since_days))


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]replaying[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f} %"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def _compare(args: dict[str, Any]) -> None:
    from dunning.whatif import present
    from dunning.whatif.compare import compare
    from dunning.whatif.params import load_params

    c_settings = _settings()
    specs = [_policy(p, c_settings.policy_file) for p in args["policies"]]
    params = load_params(args["model"])
    book = _book(args["book"], args["since"])
    if not book.cases:
        err_console.print(
            f"{book.source}: no open or recently failed invoice to replay", soft_wrap=True
        )
        raise Exit(1)
    size = args["sample"]
    replayed = min(size or len(book.cases), len(book.cases))
    with _progress() as bar:
        task = bar.add_task(f"{replayed:,} invoices under {len(specs)} policies", total=None)
        result = compare(book, specs, params=params, seed=args["seed"], days_after=args["days"],
                         sample_size=size, cores=args["workers"],
                         progress=lambda i, n: bar.update(task, completed=i, total=n))  # fmt: skip
    if args["json"]:
        print_json(present.as_json(result))
    else:
        console.print(present.headline(result), highlight=False)
        for table in present.tables(result):
            console.print(table)
    if args["report"] is not None:
        from dunning.whatif.report import render

        args["report"].write_text(render(result), encoding="utf-8")
        err_console.print(f"report written to {args['report']}")


def _settings() -> Any:
    from config.settings import load_settings

    return load_settings()


def _fit(out: Path | None, model: Path | None, since_days: int) -> None:
    from dunning.cli.common import container, ready
    from dunning.whatif.database import history
    from dunning.whatif.fit import fit
    from dunning.whatif.fit_report import render_toml, table
    from dunning.whatif.params import load_params

    c = ready(container())
    prior = load_params(model)
    found = history(c.engine, since=datetime.now(UTC) - timedelta(days=since_days))
    if not found:
        err_console.print("no merchant retry with an answer in the database: nothing to fit")
        raise Exit(1)
    result = fit(found, prior)
    console.print(table(result))
    if out is None:
        console.print("pass --out FILE to write the fitted model")
        return
    out.write_text(render_toml(result), encoding="utf-8")
    console.print(f"fitted model written to {out}; use it with --model {out}")


def whatif_cmd(
    policies: list[str] = typer.Option(
        [],
        "--policy",
        help="A policy to compare: 'default' or a TOML file of overrides "
        "over the policy file. Give it once per policy.",
    ),
    book: Path | None = typer.Option(
        None, "--book", help="An import file to replay; without it, the database's book."
    ),
    days: int = typer.Option(30, "--days", min=1, help="Days replayed after the last failure."),
    since: int = typer.Option(
        60,
        "--since",
        min=1,
        help="From the database: invoices that "
        "first failed within this many days, and every open one.",
    ),
    sample: str = typer.Option(
        str(DEFAULT_SAMPLE),
        "--sample",
        help="Invoices replayed: a stratified sample of this many, or 'all'.",
    ),
    model: Path | None = typer.Option(
        None, "--model", help="Outcome model file (config/outcome_model.toml by default)."
    ),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of the sample and the draws."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
    report: Path | None = typer.Option(None, "--report", help="Write an HTML report."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Processes (default: one per core)."
    ),
    fit: bool = typer.Option(
        False,
        "--fit",
        help="Fit the outcome model to the database's attempt history instead of comparing.",
    ),
    out: Path | None = typer.Option(None, "--out", help="With --fit: write the model here."),
) -> None:
    """Replay your open and recently failed invoices under each policy; compare."""
    if fit:
        _fit(out, model, since)
        return
    if not policies:
        err_console.print("give at least one --policy (for example --policy default)")
        raise Exit(EXIT_USAGE)
    _compare({"policies": policies, "book": book, "days": days, "since": since,
              "sample": _sample(sample), "model": model, "seed": seed, "json": as_json,
              "report": report, "workers": workers})  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("whatif")(whatif_cmd)
