"""Queue depths and dead letters on RabbitMQ, read and moved over AMQP itself.

dramatiq's RabbitMQ broker declares, per queue ``q`` (the deployment's prefixed name, see
:mod:`dunning.broker_names`), three durable queues: ``q`` (ready messages), ``q.DQ`` (retries
waiting for their backoff) and ``q.XQ`` (dead letters: ``q`` and ``q.DQ`` dead-letter a
rejected message there, where it is kept seven days). Depths come from *passive* declares,
which create nothing. What AMQP does not tell: how many messages workers hold unacknowledged
(``in_flight``: RabbitMQ's management API knows), and so how many of those are orphaned; a
dead worker's messages return to their queue as soon as its connection closes. Delayed counts
only retries no worker has taken yet: workers hold the others until they are due.

Dead letters are read by fetching them unacknowledged (``basic.get``) and handing back the ones
left alone, which RabbitMQ returns to their place. A requeued letter is published to its queue,
confirmed by the broker, and only then acknowledged in ``q.XQ``: a crash in between leaves a
copy in both (the actors are idempotent), never none. Two operators at once never move one
letter twice: a fetched message is invisible to every other channel until it is handed back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from dunning.broker_names import BrokerNames
from dunning.ops.deadletters import DeadLetter, dead_letter, revive
from dunning.ops.queues import QueueStats, parse_message

# The most dead letters one command reads from a queue (they are held while it runs).
SCAN_LIMIT = 10_000
PERSISTENT = 2

AmqpError = pika.exceptions.AMQPError
Fetched = tuple[int, Any, dict[str, Any] | None]  # delivery tag, properties, parsed body


def connection_parameters(url: str, *, timeout_s: float = 5.0) -> pika.URLParameters:
    """The broker URL's parameters, failing within ``timeout_s`` instead of retrying."""
    params = pika.URLParameters(url)
    params.socket_timeout = timeout_s
    params.blocked_connection_timeout = timeout_s
    params.connection_attempts = 1
    return params


class _QuietMissingQueues(logging.Filter):
    """pika warns whenever the broker closes a channel; a passive declare of a queue nothing
    declared yet is answered that way (404), and means only "no messages here"."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "NOT_FOUND - no queue" not in record.getMessage()


def _quiet_missing_queues() -> None:
    channel_log = logging.getLogger("pika.channel")
    if not any(isinstance(f, _QuietMissingQueues) for f in channel_log.filters):
        channel_log.addFilter(_QuietMissingQueues())


def _died_at_ms(properties: Any, fallback_ms: int) -> int:
    """When RabbitMQ dead-lettered the message (its ``x-death`` header), in ms."""
    deaths = (getattr(properties, "headers", None) or {}).get("x-death") or []
    when = deaths[0].get("time") if deaths and isinstance(deaths[0], dict) else None
    return int(when.timestamp() * 1000) if isinstance(when, datetime) else fallback_ms


class RabbitmqQueues:
    """Depths and dead letters of one deployment's queues on RabbitMQ."""

    kind = "rabbitmq"

    def __init__(self, url: str, names: BrokerNames, *, timeout_s: float = 5.0) -> None:
        self.params = connection_parameters(url, timeout_s=timeout_s)
        self.names = names
        self._connection: pika.BlockingConnection | None = None
        _quiet_missing_queues()

    def _connect(self) -> pika.BlockingConnection:
        if self._connection is None or not self._connection.is_open:
            self._connection = pika.BlockingConnection(self.params)
        return self._connection

    @contextmanager
    def _channel(self) -> Iterator[BlockingChannel]:
        """A channel of its own: closing it hands back whatever it fetched and did not ack."""
        channel = self._connect().channel()
        try:
            yield channel
        finally:
            if channel.is_open:
                channel.close()

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.close()
        self._connection = None

    def _depth(self, queue: str) -> int:
        """Ready messages of ``queue``; 0 when nothing declared it yet."""
        try:
            with self._channel() as channel:
                return int(channel.queue_declare(queue, passive=True).method.message_count)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return 0
            raise

    def _oldest_age_s(self, queue: str, now_ms: int) -> float | None:
        """Age of the message at the head of ``queue``: fetched and handed straight back."""
        try:
            with self._channel() as channel:
                method, _, body = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    return None
                channel.basic_nack(method.delivery_tag, requeue=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return None
            raise
        message = parse_message(body)
        sent = message.get("message_timestamp") if message else None
        return max(now_ms - sent, 0) / 1000 if isinstance(sent, int) else None

    def queues(self, queues: Sequence[str], *, now_ms: int) -> list[QueueStats]:
        """Ready, delayed and dead counts and the oldest ready age per queue."""
        out = []
        for q in queues:
            name = self.names.queue(q)
            out.append(
                QueueStats(
                    queue=q,
                    ready=self._depth(name),
                    delayed=self._depth(name + ".DQ"),
                    in_flight=None,
                    orphaned=None,
                    dead=self._depth(name + ".XQ"),
                    oldest_ready_age_s=self._oldest_age_s(name, now_ms),
                )
            )
        return out

    def _fetch_dead(self, channel: BlockingChannel, queue: str) -> Iterator[Fetched]:
        """Every dead letter of ``queue`` (up to :data:`SCAN_LIMIT`), fetched unacknowledged."""
        for _ in range(SCAN_LIMIT):
            try:
                method, properties, body = channel.basic_get(queue + ".XQ", auto_ack=False)
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code == 404:
                    return
                raise
            if method is None:
                return
            yield method.delivery_tag, properties, parse_message(body)

    def _each_dead(
        self,
        queues: Sequence[str],
        actor: str | None,
        ids: Sequence[str] | None,
        act: Callable[[BlockingChannel, str, Fetched], None],
        *,
        confirm: bool = False,
    ) -> None:
        """Call ``act(channel, queue, fetched)`` for each matching dead letter; the others
        go back to their queue when the channel closes. ``confirm``: publishes on the
        channel return once the broker has the message."""
        wanted = set(ids) if ids is not None else None
        for q in queues:
            with self._channel() as channel:
                if confirm:
                    channel.confirm_delivery()
                for fetched in list(self._fetch_dead(channel, self.names.queue(q))):
                    message = fetched[2]
                    name = message.get("actor_name") if message else None
                    message_id = str(message.get("message_id")) if message else None
                    if (actor and name != actor) or (
                        wanted is not None and message_id not in wanted
                    ):
                        continue
                    act(channel, q, fetched)

    def dead(
        self,
        queues: Sequence[str],
        *,
        now_ms: int,
        actor: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[DeadLetter]:
        """The dead letters of ``queues`` (oldest first), by their message id."""
        letters: list[DeadLetter] = []

        def keep(_channel: BlockingChannel, q: str, fetched: Fetched) -> None:
            _, properties, message = fetched
            message_id = str(message.get("message_id", "?")) if message else "?"
            died = _died_at_ms(properties, now_ms)
            letters.append(dead_letter(q, message_id, died, message))

        self._each_dead(queues, actor, ids, keep)
        return letters

    def requeue(
        self,
        queues: Sequence[str],
        *,
        now_ms: int,
        actor: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> int:
        """Move matching dead letters back to their queue; return how many moved."""
        moved = 0

        def move(channel: BlockingChannel, q: str, fetched: Fetched) -> None:
            nonlocal moved
            tag, _, message = fetched
            if message is None:
                return  # an unreadable body would only die again; purge it instead
            target = self.names.queue(q)
            channel.basic_publish(
                exchange="",
                routing_key=target,
                body=revive(message, target, now_ms),
                properties=pika.BasicProperties(delivery_mode=PERSISTENT),
                mandatory=True,
            )
            channel.basic_ack(tag)
            moved += 1

        self._each_dead(queues, actor, ids, move, confirm=True)
        return moved

    def purge(
        self,
        queues: Sequence[str],
        *,
        actor: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> int:
        """Delete matching dead letters; return how many were deleted."""
        deleted = 0

        def delete(channel: BlockingChannel, _q: str, fetched: Fetched) -> None:
            nonlocal deleted
            channel.basic_ack(fetched[0])
            deleted += 1

        self._each_dead(queues, actor, ids, delete)
        return deleted
