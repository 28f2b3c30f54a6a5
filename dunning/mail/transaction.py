"""One SMTP mail transaction for bytes composed here, through aiosmtplib's command methods.

``SMTP.sendmail`` parses every address twice (to validate it, then to quote it) and rewrites
the line endings twice (once to count the SIZE, once to send); for the outbox's thousands of
emails a second that was a tenth of a worker's CPU. :func:`compose` already wrote plain ASCII
addresses and CRLF line endings, so this sends MAIL, RCPT and DATA itself, with the same
replies, errors and envelope reset as ``sendmail``. Anything else goes through ``sendmail``.

The message's bytes go after ``DATA`` as they are, dot-stuffed with one ``bytes.replace``:
aiosmtplib's ``SMTP.data`` would rewrite every line ending with a regular expression and
dot-stuff with another, which for bytes :func:`compose` wrote with CRLF line endings only
changes nothing but the CPU spent.

A server that offers PIPELINING (RFC 2920; Postfix, Exim and the big providers do) gets MAIL,
RCPT and DATA in one write and answers them together: two round trips per message instead of
three or more. aiosmtplib reads one reply per command it wrote, and parses only the first of
several replies that arrive in one packet; the others are taken from its buffer with its own
parser (``SMTPProtocol._read_response_from_buffer``, tested against aiosmtpd and Postfix's
smtp-sink). Without that method, or without the extension, the commands go one at a time.

Each reply is awaited within the client's timeout, as aiosmtplib's own commands are, but
under one ``asyncio.timeout`` moved forward before each command: aiosmtplib's per-reply
``asyncio.wait_for`` adds a future, a timer and two turns of the event loop to every reply.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosmtplib
from aiosmtplib import (
    SMTPDataError,
    SMTPException,
    SMTPReadTimeoutError,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)
from aiosmtplib.protocol import SMTPProtocol

from dunning.mail.compose import OutgoingEmail

# What may stand between the angle brackets of MAIL FROM / RCPT TO without quoting.
_PLAIN = re.compile(r"[!-;=?-~]+")  # printable ASCII without space, "<" and ">"
_ACCEPTED = (250, 251)
_START_INPUT, _COMPLETED = 354, 250
# aiosmtplib's parser of one reply out of what the connection has received (see above).
_BUFFERED = "_read_response_from_buffer"


def _plain(message: OutgoingEmail) -> bool:
    return all(_PLAIN.fullmatch(a) for a in (message.sender, *message.recipients))


async def transact(client: aiosmtplib.SMTP, message: OutgoingEmail) -> dict[str, SMTPResponse]:
    """Send ``message``; return the refused recipients (some refused is not an error).

    Raises what ``sendmail`` raises: :class:`SMTPRecipientsRefused` when every recipient was
    refused, :class:`SMTPSenderRefused`, :class:`SMTPResponseException` for other replies.
    """
    if not (message.recipients and _plain(message)):
        errors, _ = await client.sendmail(message.sender, list(message.recipients), message.data)
        return dict(errors)
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    options = [f"SIZE={len(message.data)}".encode()] if client.supports_extension("size") else []
    try:
        async with _replies(client) as ask:
            return await _envelope_and_data(ask, message, options)
    except (SMTPResponseException, SMTPRecipientsRefused):
        try:  # leave the connection ready for the next transaction, as sendmail does
            await client.rset()
        except (ConnectionError, SMTPResponseException):
            pass
        raise


class _Ask:
    """Commands on ``client``, each answered within its timeout or the deadline ends."""

    def __init__(self, client: aiosmtplib.SMTP, deadline: asyncio.Timeout) -> None:
        self.client = client
        self._deadline = deadline
        self._loop = asyncio.get_running_loop()
        self.pipelining = client.supports_extension("pipelining") and hasattr(
            client.protocol, _BUFFERED
        )

    def _protocol(self) -> SMTPProtocol:
        protocol = self.client.protocol
        if protocol is None:
            raise SMTPServerDisconnected("Connection lost")
        return protocol

    def _next_deadline(self) -> None:
        timeout = self.client.timeout
        self._deadline.reschedule(None if timeout is None else self._loop.time() + timeout)

    async def command(self, *args: bytes) -> SMTPResponse:
        self._next_deadline()
        return await self.client.execute_command(*args, timeout=None)

    async def group(self, commands: list[bytes]) -> list[SMTPResponse]:
        """Commands written at once (PIPELINING), and their replies in order."""
        protocol = self._protocol()
        protocol.write(b"".join(command + b"\r\n" for command in commands))
        self._next_deadline()
        replies: list[SMTPResponse] = []
        while len(replies) < len(commands):
            reply = getattr(protocol, _BUFFERED)() if replies else None
            if reply is None:
                if replies:  # the rest comes in another packet: a new wait
                    self._next_deadline()
                reply = await protocol.read_response(timeout=None)
            replies.append(reply)
        return replies

    async def content(self, data: bytes) -> SMTPResponse:
        """The message after a 354: written as it is and answered."""
        protocol = self._protocol()
        self._next_deadline()
        protocol.write(dot_stuffed(data))
        return await protocol.read_response(timeout=None)


@asynccontextmanager
async def _replies(client: aiosmtplib.SMTP) -> AsyncIterator[_Ask]:
    """A transaction's commands; a reply that does not come in time, or a lost connection,
    closes the client (the session's state is unknown), as aiosmtplib's commands do."""
    try:
        async with asyncio.timeout(None) as deadline:
            yield _Ask(client, deadline)
    except TimeoutError as exc:
        client.close()
        raise SMTPReadTimeoutError("Timed out waiting for server response") from exc
    except SMTPServerDisconnected:
        client.close()
        raise


async def _envelope_and_data(
    ask: _Ask, message: OutgoingEmail, options: list[bytes]
) -> dict[str, SMTPResponse]:
    if ask.pipelining:
        return await _pipelined(ask, message, options)
    reply = await ask.command(b"MAIL", f"FROM:<{message.sender}>".encode(), *options)
    if reply.code != 250:
        raise SMTPSenderRefused(reply.code, reply.message, message.sender)
    refused: list[SMTPRecipientRefused] = []
    for recipient in message.recipients:
        reply = await ask.command(b"RCPT", f"TO:<{recipient}>".encode())
        if reply.code not in _ACCEPTED:
            refused.append(SMTPRecipientRefused(reply.code, reply.message, recipient))
    if len(refused) == len(message.recipients):
        raise SMTPRecipientsRefused(refused)
    reply = await ask.command(b"DATA")
    if reply.code != _START_INPUT:
        raise SMTPDataError(reply.code, reply.message)
    reply = await ask.content(message.data)
    if reply.code != _COMPLETED:
        raise SMTPDataError(reply.code, reply.message)
    return {r.recipient: SMTPResponse(r.code, r.message) for r in refused}


async def _pipelined(
    ask: _Ask, message: OutgoingEmail, options: list[bytes]
) -> dict[str, SMTPResponse]:
    """MAIL, RCPT and DATA in one group; every reply is read before any is judged, so the
    session stays in step whatever the server refused."""
    mail = b" ".join([b"MAIL", f"FROM:<{message.sender}>".encode(), *options])
    rcpts = [f"RCPT TO:<{recipient}>".encode() for recipient in message.recipients]
    replies = await ask.group([mail, *rcpts, b"DATA"])
    sender, data = replies[0], replies[-1]
    refused = [
        SMTPRecipientRefused(reply.code, reply.message, recipient)
        for recipient, reply in zip(message.recipients, replies[1:-1], strict=True)
        if reply.code not in _ACCEPTED
    ]
    problem: SMTPException | None = None
    if sender.code != _COMPLETED:
        problem = SMTPSenderRefused(sender.code, sender.message, message.sender)
    elif len(refused) == len(message.recipients):
        problem = SMTPRecipientsRefused(refused)
    elif data.code != _START_INPUT:
        problem = SMTPDataError(data.code, data.message)
    if problem is not None:
        if data.code == _START_INPUT:  # the server waits for content it must not get
            await ask.content(b"")
        raise problem
    reply = await ask.content(message.data)
    if reply.code != _COMPLETED:
        raise SMTPDataError(reply.code, reply.message)
    return {r.recipient: SMTPResponse(r.code, r.message) for r in refused}


def dot_stuffed(data: bytes) -> bytes:
    """``data`` (CRLF line endings only) as the DATA command carries it: a line that starts
    with a dot gets a second one, and the end-of-data line follows (RFC 5321, 4.5.2)."""
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if stuffed and not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"
