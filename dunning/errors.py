"""One root error with a small tree: transient errors are retried, permanent ones are not.

A bad setting or policy file is :class:`ConfigError`, defined beside the settings (``config``
imports nothing of the pipeline) and re-exported here.
"""

from __future__ import annotations

from config.errors import ConfigError

__all__ = [
    "ConfigError",
    "DunningError",
    "GatewayUnavailable",
    "InvalidTransition",
    "MailPermanent",
    "MailTransient",
    "MailUnavailable",
    "NotFound",
    "PermanentError",
    "TransientError",
    "UsageError",
]


class DunningError(Exception):
    """Root of every error the pipeline raises on purpose."""


class UsageError(DunningError):
    """A command was given something it cannot use (an argument, an option, an input file);
    the message names it."""


class TransientError(DunningError):
    """Worth retrying: a timeout, a dropped connection, a server that said 'try later'."""


class PermanentError(DunningError):
    """Retrying cannot help: bad input, a refused recipient, a missing record."""


class InvalidTransition(PermanentError):
    """A state change the lifecycle does not allow; nothing was written."""


class NotFound(PermanentError):
    """A record a message or request names does not exist."""


class GatewayUnavailable(TransientError):
    """The payment gateway did not answer; the outcome of a charge is unknown."""


class MailTransient(TransientError):
    """The SMTP server failed in a way that may pass; the message is retried later."""


class MailUnavailable(MailTransient):
    """No SMTP server takes mail at all for now (unreachable, closing, timing out, closed):
    every message would fail the same way, not only this one."""


class MailPermanent(PermanentError):
    """The SMTP server refused the message for good (5xx): it is marked failed, not retried."""
