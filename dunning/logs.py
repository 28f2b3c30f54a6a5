"""Logging: text or JSON lines, and a filter that masks anything that looks like a card number."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from config.settings import LogFormat, Settings
from dunning.gateways.cards import mask_pans

# Attributes a LogRecord always has; anything else was passed in ``extra`` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


# What the current thread is working on (set by the worker middleware: actor, message id);
# every JSON log line carries it.
context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "dunning_log_context", default=None
)


class MaskCardNumbers(logging.Filter):
    """Replace every Luhn-valid 13-19 digit number in a record with its last four digits."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_pans(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(context.get() or {})
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = mask_pans(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Install one handler on the root logger, in the configured format, masking card numbers."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(MaskCardNumbers())
    if settings.log_format is LogFormat.json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
