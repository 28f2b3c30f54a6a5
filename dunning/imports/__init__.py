"""``dunning import``: bulk, validated, idempotent loading of customers from JSON lines."""

from dunning.imports.checks import LineError, parse_line
from dunning.imports.run import (
    ImportReport,
    Progress,
    UnreadableFile,
    import_file,
    iter_errors,
)

__all__ = [
    "ImportReport",
    "LineError",
    "Progress",
    "UnreadableFile",
    "import_file",
    "iter_errors",
    "parse_line",
]
