"""How a built message leaves: the Transport port, the .eml file outbox and the in-memory twin.

The interface is synchronous because dramatiq actors run in threads; the SMTP transport
(:mod:`dunning.mail.smtp`) hides its event loop behind the same interface.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from dunning.errors import MailPermanent, MailTransient
from dunning.mail.compose import OutgoingEmail, outgoing

if TYPE_CHECKING:
    from config.settings import Settings

logger = logging.getLogger(__name__)

# An SMTP transport waits at most this many of its per-operation time-outs for one send (a
# send is several operations); callers bound a send by it.
SEND_WAIT_FACTOR = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")


@dataclass(frozen=True)
class SendResult:
    """Accepted for at least one recipient; ``refused`` maps each refused one to (code, reply)."""

    refused: dict[str, tuple[int, str]] = field(default_factory=dict)


# What a transport accepts: the composed bytes, or a message the email package built.
Sendable = OutgoingEmail | EmailMessage


def as_outgoing(message: Sendable) -> OutgoingEmail:
    """The composed form of ``message``."""
    return message if isinstance(message, OutgoingEmail) else outgoing(message)


class Transport(Protocol):
    def send(self, message: Sendable) -> SendResult:
        """Hand the message over; raise MailTransient (retry later) or MailPermanent (give up)."""
        ...

    def close(self) -> None:
        """Release connections and threads; safe to call twice."""
        ...


def all_refused(refused: dict[str, tuple[int, str]]) -> MailTransient | MailPermanent:
    """The error for a message every recipient refused.

    Only 4xx refusals (greylisting, a full mailbox) are worth a later retry; any 5xx among
    them makes the whole send permanent.
    """
    answers = "; ".join(f"{rcpt}: {code} {reply}" for rcpt, (code, reply) in refused.items())
    if all(400 <= code < 500 for code, _ in refused.values()):
        return MailTransient(f"every recipient was refused for now: {answers}")
    return MailPermanent(f"every recipient was refused: {answers}")


def eml_name(message_id: str) -> str:
    """A file name for a Message-ID: the same id always maps to the same name."""
    core = message_id.strip().strip("<>") or "no-message-id"
    return _UNSAFE.sub("_", core)[:200] + ".eml"


class FileTransport:
    """Writes each message to ``<outbox_dir>/<message-id>.eml``; a resend overwrites its file."""

    def __init__(self, outbox_dir: Path | str) -> None:
        self.outbox_dir = Path(outbox_dir)

    def send(self, message: Sendable) -> SendResult:
        """Write the message atomically (temporary file, then rename)."""
        composed = as_outgoing(message)
        message_id = composed.message_id
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        target = self.outbox_dir / eml_name(message_id)
        data = composed.data
        fd, tmp = tempfile.mkstemp(dir=self.outbox_dir, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        logger.info("wrote %s to the outbox %s", message_id, target)
        return SendResult()

    def close(self) -> None:
        return None


class MemoryTransport:
    """Keeps sent messages in ``.sent`` for tests; failures and refusals can be scripted."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.closed = False
        self._failures: list[Exception] = []
        self._refusals: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def fail_next(self, n: int, exc: Exception) -> None:
        """Make the next ``n`` sends raise ``exc`` (nothing is recorded as sent)."""
        with self._lock:
            self._failures.extend([exc] * n)

    def refuse(self, address: str, code: int = 550, reply: str = "mailbox unavailable") -> None:
        """Refuse ``address`` from now on, as a server refusing one recipient would."""
        with self._lock:
            self._refusals[address.lower()] = (code, reply)

    def send(self, message: Sendable) -> SendResult:
        """Record the message (as the email package parses what was sent), or raise the next
        scripted failure."""
        composed = as_outgoing(message)
        with self._lock:
            if self._failures:
                raise self._failures.pop(0)
            recipients = composed.recipients
            known = self._refusals
            refused = {r: known[r.lower()] for r in recipients if r.lower() in known}
            if recipients and len(refused) == len(recipients):
                raise all_refused(refused)
            self.sent.append(composed.parsed())
            return SendResult(refused=refused)

    def close(self) -> None:
        self.closed = True


def make_transport(settings: Settings) -> Transport:
    """SMTP when ``DUNNING_SMTP__HOST`` is set, else the .eml file outbox."""
    if settings.smtp.host:
        from dunning.mail.smtp import SmtpTransport

        return SmtpTransport(settings.smtp)
    return FileTransport(settings.outbox_dir)
