"""Turn a rendered email into a MIME message with a Message-ID stable for its dedup key."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from dunning.errors import PermanentError
from dunning.mail.render import RenderedEmail

# Headers build_message owns; extra headers may not replace them.
_RESERVED = frozenset(
    {"from", "to", "cc", "bcc", "subject", "date", "message-id", "auto-submitted", "mime-version"}
)


class BadMessage(PermanentError):
    """The message cannot be built (an address or header is malformed); resending cannot help."""


def message_id_for(dedup_key: str, mail_from: str) -> str:
    """``<hex@domain>`` from the dedup key, so a resent copy carries the same Message-ID."""
    digest = hashlib.sha256(dedup_key.encode("utf-8")).hexdigest()[:32]
    _, address = parseaddr(mail_from)
    domain = address.rpartition("@")[2].strip().lower() or "localhost"
    return f"<{digest}@{domain}>"


def build_message(
    rendered: RenderedEmail,
    *,
    mail_from: str,
    to: str,
    cc: Sequence[str],
    message_id: str,
    headers: Mapping[str, str] | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative message (text, then HTML) ready for a transport.

    ``date`` defaults to now: the message is built at the sending edge, where reading the clock
    is allowed. Raises :class:`BadMessage` for a header value the email format cannot carry.
    """
    when = date or datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("build_message needs a timezone-aware date")
    message = EmailMessage()
    try:
        message["Subject"] = rendered.subject
        message["From"] = mail_from
        message["To"] = to
        if cc:
            message["Cc"] = ", ".join(cc)
        message["Date"] = format_datetime(when)
        message["Message-ID"] = message_id
        message["Auto-Submitted"] = "auto-generated"
        for name, value in (headers or {}).items():
            if name.lower() in _RESERVED:
                raise BadMessage(f"header {name!r} is set by build_message; do not pass it")
            message[name] = value
    except (ValueError, TypeError, IndexError) as exc:
        # the email package rejects line breaks and unparsable addresses with these
        raise BadMessage(f"cannot build message {message_id}: {exc}") from exc
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message
