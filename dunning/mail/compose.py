"""The sending edge's message: the bytes a transport hands over, composed without the email
package's header parsing.

:func:`dunning.mail.message.build_message` builds an :class:`~email.message.EmailMessage`,
whose header objects parse every address and parameter they are given: most of a millisecond
per email. The outbox sends thousands a second, so :func:`compose` writes the same MIME
structure (multipart/alternative, text then HTML, UTF-8, quoted-printable) straight to bytes
when every address is a plain ASCII ``local@domain`` and every header line is printable ASCII.
Anything else (a display name, an international address, an odd header) goes through
``build_message`` and is flattened by the email package, so the fast path never has to be
clever. Both give the same message once parsed (``tests/unit/mail/test_compose.py``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr

from dunning.mail.message import _RESERVED, BadMessage, build_message
from dunning.mail.render import RenderedEmail

# A plain address in the fast path: no display name, no quoting, no comments, ASCII only.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
)
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII without ":"
_PRINTABLE = re.compile(r"[ -~]*")  # one header line's worth of printable ASCII
_FOLD_AT = 78
# UTF-8 bytes per encoded word: 39 bytes are 52 base64 characters, 64 with "=?utf-8?b?" and
# "?=", 73 with "Subject: " before the first.
_WORD_BYTES = 39


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """A message ready to leave: envelope, Message-ID and the bytes (CRLF line ends)."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    data: bytes
    # Kept when the email package built the message: SMTP then sends it as the package
    # flattens it (SMTPUTF8 for international addresses).
    message: EmailMessage | None = None

    def parsed(self) -> EmailMessage:
        """The message as the email package reads it (tests, previews, the in-memory twin)."""
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def outgoing(message: EmailMessage) -> OutgoingEmail:
    """An :class:`OutgoingEmail` for a message the email package built."""
    _, sender = parseaddr(str(message.get("From", "")))
    fields = [str(v) for name in ("To", "Cc") for v in message.get_all(name, [])]
    try:
        data = message.as_bytes(policy=policy.SMTP)
    except UnicodeEncodeError:  # an international address: only SMTPUTF8 can carry it
        data = message.as_bytes(policy=policy.SMTPUTF8)
    return OutgoingEmail(
        message_id=str(message.get("Message-ID", "")),
        sender=sender,
        recipients=tuple(address for _, address in getaddresses(fields) if address),
        data=data,
        message=message,
    )


def compose(
    rendered: RenderedEmail,
    *,
    mail_from: str,
    to: str,
    cc: Sequence[str],
    message_id: str,
    headers: Mapping[str, str] | None = None,
    date: datetime | None = None,
) -> OutgoingEmail:
    """What :func:`build_message` builds, as bytes, with its arguments and its errors."""
    when = date or datetime.now(UTC)
    extra = dict(headers or {})
    if not _fast(mail_from, to, cc, message_id, extra):
        return outgoing(
            build_message(
                rendered,
                mail_from=mail_from,
                to=to,
                cc=cc,
                message_id=message_id,
                headers=extra,
                date=when,
            )
        )
    if when.tzinfo is None:
        raise ValueError("build_message needs a timezone-aware date")
    for name in extra:
        if name.lower() in _RESERVED:
            raise BadMessage(f"header {name!r} is set by build_message; do not pass it")
    sender_header, sender = _sender(mail_from)
    boundary = "===============" + hashlib.sha256(message_id.encode()).hexdigest()[:24] + "=="
    head = _head(rendered.subject, sender_header, to, cc, when, message_id, extra, boundary)
    data = b"".join(
        [
            head,
            b"\r\n\r\n",
            _part(boundary, "plain", rendered.text),
            _part(boundary, "html", rendered.html),
            f"--{boundary}--\r\n".encode("ascii"),
        ]
    )
    return OutgoingEmail(message_id, sender, (to, *cc), data)


def _head(
    subject: str,
    sender_header: str,
    to: str,
    cc: Sequence[str],
    when: datetime,
    message_id: str,
    extra: Mapping[str, str],
    boundary: str,
) -> bytes:
    """The header block, in the email package's order, without its final line break."""
    lines = [f"Subject: {_subject(subject, message_id)}", f"From: {sender_header}", f"To: {to}"]
    if cc:
        lines.append(_folded("Cc", list(cc)))
    lines += [f"Date: {format_datetime(when)}", f"Message-ID: {message_id}",
              "Auto-Submitted: auto-generated"]  # fmt: skip
    lines += [f"{name}: {value}" for name, value in extra.items()]
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"',
    ]
    return "\r\n".join(lines).encode("ascii")


def _fast(
    mail_from: str, to: str, cc: Sequence[str], message_id: str, extra: Mapping[str, str]
) -> bool:
    """True when every address is plain and every header value printable ASCII."""
    if not all(_PLAIN_ADDRESS.fullmatch(a) for a in (to, *cc)):
        return False
    if not _PRINTABLE.fullmatch(message_id) or len(message_id) > _FOLD_AT - 12:
        return False
    return all(
        _HEADER_NAME.fullmatch(n) and _PRINTABLE.fullmatch(v) and len(n) + len(v) < _FOLD_AT - 2
        for n, v in extra.items()
    ) and _sender_ok(mail_from)


def _sender_ok(mail_from: str) -> bool:
    try:
        _sender(mail_from)
    except BadMessage:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _sender(mail_from: str) -> tuple[str, str]:
    """The From header as the email package writes it, and its address (a process sends from
    one or a few addresses, so this is worked out once each)."""
    message = EmailMessage()
    try:
        message["From"] = mail_from
    except (ValueError, TypeError, IndexError) as exc:
        raise BadMessage(f"cannot use {mail_from!r} as the sender: {exc}") from exc
    folded = message.as_bytes(policy=policy.SMTP).decode("ascii").rstrip("\r\n")
    _, address = parseaddr(mail_from)
    return folded.removeprefix("From: "), address


def _subject(subject: str, message_id: str) -> str:
    if "\r" in subject or "\n" in subject:
        raise BadMessage(f"cannot build message {message_id}: the subject has a line break")
    plain = _PRINTABLE.fullmatch(subject) and "=?" not in subject  # no look-alike encoded word
    if plain and len(subject) <= _FOLD_AT - len("Subject: "):
        return subject
    words = (base64.b64encode(w).decode("ascii") for w in _words(subject))
    return "\r\n ".join(f"=?utf-8?b?{w}?=" for w in words)


def _words(text: str) -> list[bytes]:
    """UTF-8 chunks of at most ``_WORD_BYTES`` bytes, never splitting a character."""
    words: list[bytes] = []
    current = b""
    for ch in text:
        b = ch.encode("utf-8")
        if len(current) + len(b) > _WORD_BYTES:
            words.append(current)
            current = b""
        current += b
    return [*words, current] if current or not words else words


def _folded(name: str, addresses: list[str]) -> str:
    """``Name: a, b, c`` folded before an address where the line would pass 78 characters."""
    line, lines = f"{name}: {addresses[0]}", []
    for address in addresses[1:]:
        if len(line) + 2 + len(address) > _FOLD_AT:
            lines.append(line + ",")
            line = " " + address
        else:
            line += ", " + address
    return "\r\n".join([*lines, line])


def _part(boundary: str, subtype: str, text: str) -> bytes:
    """One body part: UTF-8, quoted-printable, ending with a line break as the email package's
    ``set_content`` writes it."""
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    encoded = binascii.b2a_qp(body, istext=True).replace(b"\n", b"\r\n")
    return (
        (
            f"--{boundary}\r\n"
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        + encoded
        + b"\r\n"
    )  # that line break belongs to the next delimiter
