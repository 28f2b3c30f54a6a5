"""What every command shares: exit codes, the container, console output."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from dunning.bootstrap import Container, bootstrap

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

console = Console()
err_console = Console(stderr=True)


class Exit(Exception):
    """Stop a command with an exit code (after it has said why)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def container() -> Container:
    """Load settings and wire the container; a bad setting stops with exit code 2."""
    return bootstrap()


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str, sort_keys=True) + "\n")
