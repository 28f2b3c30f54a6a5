"""Entry point of the ``dunning`` console script: ``main(argv) -> exit code``."""

from __future__ import annotations

import sys

import typer
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError
from typer._click import exceptions as click_exc

from dunning.cli import (
    check,
    customers,
    daemons,
    db,
    endpoints,
    importer,
    invoices,
    mail,
    ops,
    policy,
    refunds,
    simulate,
    sync,
    whatif,
)
from dunning.cli.common import EXIT_FAILURE, EXIT_USAGE, Exit, err_console
from dunning.errors import ConfigError, DunningError, NotFound, UsageError
from dunning.logs import configure_command_logging
from dunning.store.readiness import DatabaseNotReady, reason

app = typer.Typer(
    name="dunning",
    help="Dunning and payment-retry pipeline for subscription businesses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (
    db,
    check,
    importer,
    policy,
    mail,
    simulate,
    daemons,
    ops,
    invoices,
    customers,
    endpoints,
    refunds,
    whatif,
    sync,
):
    module.register(app)


def _say(label: str, message: object) -> None:
    # Plain text: messages quote paths, ids and JSON whose brackets rich would read as markup.
    err_console.print(Text.assemble((label, "bold red"), f": {message}"), soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 failure, 2 bad usage or configuration).

    An id that names no record (an invoice, customer, endpoint, overpayment) is bad usage: 2.
    """
    args = sys.argv[1:] if argv is None else argv
    configure_command_logging()
    try:
        result = app(args=args, prog_name="dunning", standalone_mode=False)
    except (UsageError, NotFound, DatabaseNotReady) as exc:
        _say("error", exc)
        return EXIT_USAGE
    except ConfigError as exc:
        _say("configuration error", exc)
        return EXIT_USAGE
    except Exit as exc:
        return exc.code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return EXIT_FAILURE
    except click_exc.ClickException as exc:
        exc.show()
        return EXIT_USAGE if isinstance(exc, click_exc.UsageError) else EXIT_FAILURE
    except DunningError as exc:
        _say("error", exc)
        return EXIT_FAILURE
    except SQLAlchemyError as exc:
        # The database was ready when the command started and failed under it.
        _say("error", f"the database failed: {reason(exc)}")
        return EXIT_FAILURE
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
