"""One SMTP mail transaction for bytes composed here, through aiosmtplib's command methods.

``SMTP.sendmail`` parses every address twice (to validate it, then to quote it) and rewrites
the line endings twice (once to count the SIZE, once to send); for the outbox's thousands of
emails a second that was a tenth of a worker's CPU. :func:`compose` already wrote plain ASCII
addresses and CRLF line endings, so this sends MAIL, RCPT and DATA itself, with the same
replies, errors and envelope reset as ``sendmail``. Anything else goes through ``sendmail``.
"""

from __future__ import annotations

import re

import aiosmtplib
from aiosmtplib import (
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
)

from dunning.mail.compose import OutgoingEmail

# What may stand between the angle brackets of MAIL FROM / RCPT TO without quoting.
_PLAIN = re.compile(r"[!-;=?-~]+")  # printable ASCII without space, "<" and ">"
_ACCEPTED = (250, 251)


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
        return await _envelope_and_data(client, message, options)
    except (SMTPResponseException, SMTPRecipientsRefused):
        try:  # leave the connection ready for the next transaction, as sendmail does
            await client.rset()
        except (ConnectionError, SMTPResponseException):
            pass
        raise


async def _envelope_and_data(
    client: aiosmtplib.SMTP, message: OutgoingEmail, options: list[bytes]
) -> dict[str, SMTPResponse]:
    reply = await client.execute_command(b"MAIL", f"FROM:<{message.sender}>".encode(), *options)
    if reply.code != 250:
        raise SMTPSenderRefused(reply.code, reply.message, message.sender)
    refused: list[SMTPRecipientRefused] = []
    for recipient in message.recipients:
        reply = await client.execute_command(b"RCPT", f"TO:<{recipient}>".encode())
        if reply.code not in _ACCEPTED:
            refused.append(SMTPRecipientRefused(reply.code, reply.message, recipient))
    if len(refused) == len(message.recipients):
        raise SMTPRecipientsRefused(refused)
    await client.data(message.data)
    return {r.recipient: SMTPResponse(r.code, r.message) for r in refused}
