"""The code stays small enough to read: no module over 300 lines and no function over 50 in
the packages (generated migrations aside)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dunning", "workers", "schedules", "config")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


def _sources() -> list[Path]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations/versions" not in path.as_posix():
                found.append(path)
    return found


def _over_in(name: str, source: str) -> dict[str, int]:
    """The module and the functions of one source over their limits, with their lengths."""
    over: dict[str, int] = {}
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        over[name] = lines
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                over[f"{name}:{node.name}"] = length
    return over


@functools.cache
def _over_limits() -> dict[str, int]:
    """Every module and function over its limit, with its length in lines."""
    over: dict[str, int] = {}
    for path in _sources():
        over |= _over_in(path.relative_to(ROOT).as_posix(), path.read_text())
    return over


def test_the_scan_sees_the_packages() -> None:
    assert len(_sources()) > 100


def test_the_scan_finds_a_long_function_and_a_long_module() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    source = f"class A:\n  def long(self):\n{body}\n\n\ndef short():\n    return 1\n"
    assert _over_in("m.py", source) == {"m.py:long": MAX_FUNCTION_LINES + 1}
    padded = source + "\n" * MAX_MODULE_LINES
    assert set(_over_in("m.py", padded)) == {"m.py", "m.py:long"}


def test_no_module_or_function_over_the_limits() -> None:
    over = _over_limits()
    assert not over, (
        f"over {MAX_MODULE_LINES} lines per module / {MAX_FUNCTION_LINES} per function "
        f"(split them): {over}"
    )
