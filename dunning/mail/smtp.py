"""SMTP delivery over one reused aiosmtplib connection, behind the synchronous Transport port.

A private event loop runs in a daemon thread; the client lives on that loop and is created at
the first send, never at import or in the constructor. Sends are serialised on the loop (one
client, one transaction at a time, queued there). A connection the server closed while idle is
reopened once and the message resent; a copy that went out before the drop carries the same
Message-ID. A failure every message would share (no server, a closed transport) is
:class:`MailUnavailable`, so that the outbox puts off the rest of its batch at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import ssl
import threading
from typing import Any

import aiosmtplib
from aiosmtplib import (
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPServerDisconnected,
)

from config.settings import SmtpSettings, SmtpTls
from dunning.errors import ConfigError, MailPermanent, MailTransient, MailUnavailable
from dunning.mail.compose import OutgoingEmail
from dunning.mail.handoff import Lane, NoReply
from dunning.mail.transaction import transact
from dunning.mail.transport import (
    SEND_WAIT_FACTOR,
    Sendable,
    SendResult,
    all_refused,
    as_outgoing,
)

logger = logging.getLogger(__name__)

_SERVICE_CLOSING = 421
_CLOSED = "the SMTP transport is closed; send again after restart"


def _dropped_while_idle(exc: BaseException) -> bool:
    if isinstance(exc, SMTPServerDisconnected):
        return True
    return isinstance(exc, SMTPResponseException) and exc.code == _SERVICE_CLOSING


async def _cancel_others() -> None:
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


async def _hand_over(client: aiosmtplib.SMTP, message: OutgoingEmail) -> dict[str, Any]:
    """One SMTP transaction: the composed bytes as they are, or (for a message the email
    package built) that package's flattening, which knows when SMTPUTF8 is needed."""
    if message.message is not None:
        errors, _ = await client.send_message(message.message)
        return dict(errors)
    return await transact(client, message)


class SmtpTransport:
    """Sends through ``settings`` (host, port, TLS mode, login, timeout) on one connection."""

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if not settings.host:
            raise ConfigError("the SMTP transport needs DUNNING_SMTP__HOST")
        self._settings = settings
        self._tls_context = tls_context
        self._local_hostname = local_hostname
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: aiosmtplib.SMTP | None = None
        self._lane: Lane[OutgoingEmail, SendResult] | None = None
        self._turn: asyncio.Lock | None = None  # one transaction at a time on the connection
        self._closed = False
        self.connections_opened = 0

    def send(self, message: Sendable) -> SendResult:
        """Send one message; MailTransient to retry later, MailPermanent to give up.

        Worker threads hand their messages to the loop, which sends them one after another
        on the connection: the next transaction starts as soon as the last one ends, not
        when the thread that waits for it next gets the interpreter.
        """
        message = as_outgoing(message)
        with self._lock:
            if self._closed:
                raise MailUnavailable(_CLOSED)
            lane = self._ensure_lane()
            reply = lane.submit(message)
        try:
            return reply.wait(self._settings.timeout_s * SEND_WAIT_FACTOR)
        except NoReply:
            lane.abandon(reply)
            raise MailUnavailable(
                f"SMTP send to {self._settings.host}:{self._settings.port} did not finish"
            ) from None
        except asyncio.CancelledError:
            raise MailUnavailable(_CLOSED) from None

    def _refusal(self) -> MailUnavailable | None:
        return MailUnavailable(_CLOSED) if self._closed else None

    async def _in_turn(self, message: OutgoingEmail) -> SendResult:
        if self._turn is None:
            self._turn = asyncio.Lock()  # made on the loop that uses it
        async with self._turn:
            if self._closed:
                raise MailUnavailable(_CLOSED)
            return await self._send(message)

    def close(self) -> None:
        """Say QUIT, then stop the loop thread. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
            if loop is None or thread is None:
                return
            try:
                asyncio.run_coroutine_threadsafe(self._quit(), loop).result(
                    timeout=self._settings.timeout_s + 1
                )
            except concurrent.futures.TimeoutError:
                logger.warning("SMTP QUIT timed out; closing the socket")
            try:  # a send still waiting for its turn is answered now, not at its time-out
                asyncio.run_coroutine_threadsafe(_cancel_others(), loop).result(timeout=1)
            except concurrent.futures.TimeoutError:
                logger.warning("SMTP sends still waiting at close did not stop")
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=self._settings.timeout_s)
            if not thread.is_alive():
                loop.close()

    def _ensure_lane(self) -> Lane[OutgoingEmail, SendResult]:
        if self._lane is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="smtp-transport", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
            self._lane = Lane(loop, self._in_turn, self._refusal)
        return self._lane

    async def _connect(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        self._drop()
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password.get_secret_value() if s.password and s.username else None,
            local_hostname=self._local_hostname,
            timeout=s.timeout_s,
            use_tls=s.tls is SmtpTls.tls,
            # never None: that upgrades only when offered, which an attacker can strip
            start_tls=s.tls is SmtpTls.starttls,
            tls_context=self._tls_context,
        )
        await client.connect()
        self._client = client
        self.connections_opened += 1
        logger.info("SMTP connected to %s:%s (tls=%s)", s.host, s.port, s.tls.value)
        return client

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _transact(self, message: OutgoingEmail) -> SendResult:
        reused = self._client is not None and self._client.is_connected
        client = await self._connect()
        try:
            errors = await _hand_over(client, message)
        except (SMTPServerDisconnected, SMTPResponseException) as exc:
            if not (reused and _dropped_while_idle(exc)):
                raise
            logger.info("SMTP server dropped the idle connection (%s); reconnecting", exc)
            self._drop()
            client = await self._connect()
            errors = await _hand_over(client, message)
        refused = {rcpt: (resp.code, resp.message) for rcpt, resp in errors.items()}
        if refused:
            logger.warning("SMTP refused some recipients of %s: %s", message.message_id, refused)
        return SendResult(refused=refused)

    async def _send(self, message: OutgoingEmail) -> SendResult:
        where = f"{self._settings.host}:{self._settings.port}"
        try:
            return await self._transact(message)
        except SMTPRecipientsRefused as exc:
            raise all_refused({r.recipient: (r.code, r.message) for r in exc.recipients}) from exc
        except SMTPResponseException as exc:
            answer = f"SMTP {where} answered {exc.code} {exc.message}"
            if exc.code >= 500:
                raise MailPermanent(answer) from exc
            if exc.code == _SERVICE_CLOSING:
                self._drop()
                raise MailUnavailable(answer) from exc
            raise MailTransient(answer) from exc
        except SMTPNotSupported as exc:
            self._drop()
            raise MailUnavailable(
                f"SMTP {where} lacks a feature we need ({exc}); check DUNNING_SMTP__TLS"
            ) from exc
        except (SMTPException, OSError) as exc:
            # connection refused or lost, timeouts, TLS failures: the server may come back
            self._drop()
            raise MailUnavailable(f"SMTP {where} unreachable: {exc}") from exc
        except ValueError as exc:
            raise MailPermanent(f"message cannot be sent: {exc}") from exc
        except asyncio.CancelledError:
            # a cancelled transaction leaves the session in an unknown state
            self._drop()
            raise

    async def _quit(self) -> None:
        if self._turn is not None:  # after the transaction under way, if any
            async with self._turn:
                await self._say_quit()
        else:
            await self._say_quit()

    async def _say_quit(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit()
        except (SMTPException, OSError) as exc:
            logger.info("SMTP QUIT failed (%s); closing the socket", exc)
        finally:
            client.close()
