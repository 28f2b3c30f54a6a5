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
from dunning.links import hide_tokens

# Attributes a LogRecord always has; anything else was passed in ``extra`` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


# What the current thread is working on (set by the worker middleware: actor, message id);
# every JSON log line carries it.
context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "dunning_log_context", default=None
)


def scrub(text: str) -> str:
    """``text`` as a log line may show it: card numbers masked to their last four digits,
    card-update tokens (bearer credentials, in the access log's paths too) replaced by their
    fingerprints."""
    return hide_tokens(mask_pans(text))


class MaskCardNumbers(logging.Filter):
    """Replace every Luhn-valid 13-19 digit number in a record with its last four digits, and
    every card-update token with its fingerprint."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = scrub(message)
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
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        # Every value, not only the message: a card number may sit in an ``extra`` field or a
        # traceback (the filter has masked the message already).
        return json.dumps({k: _masked(v) for k, v in out.items()}, default=str)


def _masked(value: Any) -> Any:
    """``value`` itself, or its text with the card numbers masked when it holds one."""
    if value is None or isinstance(value, bool):
        return value
    text = value if isinstance(value, str) else str(value)
    masked = scrub(text)
    return value if masked == text else masked


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [key=value …]``: the worker's context (actor, message id)
    and the ids passed in ``extra`` (invoice, customer, …) that the message does not name."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        message = record.getMessage()
        fields = dict(context.get() or {})
        fields.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _STANDARD and not key.startswith("_")
        )
        shown = [f"{k}={v}" for k, v in fields.items() if v is not None and str(v) not in message]
        if shown:
            head, sep, rest = line.partition("\n")  # a traceback stays below the line
            line = f"{head} [{' '.join(shown)}]{sep}{rest}"
        # The whole line: the traceback and the extra fields as well as the message.
        return scrub(line)


# APScheduler says "Running job …" and "… executed successfully" at INFO for every producer run,
# dozens of lines a minute that tell nothing the producers' own lines do not, and a line per job
# as they are added. Its start, stop and warnings still show.
_PER_RUN = "apscheduler.executors"


class _QuietJobAdds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not str(record.msg).startswith(
            ("Adding job", "Added job")
        )


_QUIET_ADDS = _QuietJobAdds()


def _handler(stream: Any, log_format: LogFormat) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(MaskCardNumbers())
    handler.setFormatter(JsonFormatter() if log_format is LogFormat.json else TextFormatter())
    return handler


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Install one handler on the root logger, in the configured format, masking card numbers."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(_handler(stream, settings.log_format))
    root.setLevel(settings.log_level)
    scheduler = logging.getLogger("apscheduler.scheduler")
    if settings.log_level == "DEBUG":
        logging.getLogger(_PER_RUN).setLevel(logging.NOTSET)
        scheduler.removeFilter(_QUIET_ADDS)
    else:
        logging.getLogger(_PER_RUN).setLevel(logging.WARNING)
        scheduler.addFilter(_QUIET_ADDS)


def configure_command_logging(*, stream: Any = None) -> None:
    """Logging for a one-shot command: warnings and errors in the text format on stderr, each
    naming its logger. Leaves alone a process whose logging is set up already (a test runner,
    a daemon that configured it from its settings)."""
    root = logging.getLogger()
    if root.handlers:
        return
    root.addHandler(_handler(stream, LogFormat.text))
    root.setLevel(logging.WARNING)
