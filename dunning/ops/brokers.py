"""One view of the broker's queues and dead letters for the CLI, ``/ops`` and ``/metrics``,
whichever broker runs: Redis (:mod:`dunning.ops.queues`, :mod:`dunning.ops.deadletters`) or
RabbitMQ (:mod:`dunning.ops.rabbitmq`). The in-process stub broker has nothing to read.

Both give the same shapes (:class:`QueueStats`, :class:`DeadLetter`) under the queue names
operators use; what a broker cannot say is ``None``. A broker that cannot be reached raises
:class:`BrokerUnavailable`, whose message says which broker and why.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import pika.exceptions
import redis

from config.settings import Settings
from dunning.broker_names import BrokerNames
from dunning.ops import deadletters
from dunning.ops.deadletters import DeadLetter
from dunning.ops.queues import QueueStats, inspect_queues, redis_client
from dunning.ops.rabbitmq import RabbitmqQueues


class BrokerUnavailable(Exception):
    """The broker could not be read or changed."""


class BrokerQueues(Protocol):
    kind: str

    def queues(self, queues: Sequence[str], *, now_ms: int) -> list[QueueStats]: ...

    def dead(
        self,
        queues: Sequence[str],
        *,
        now_ms: int,
        actor: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[DeadLetter]: ...

    def requeue(
        self,
        queues: Sequence[str],
        *,
        now_ms: int,
        actor: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> int: ...

    def purge(
        self,
        queues: Sequence[str],
        *,
        actor: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> int: ...

    def close(self) -> None: ...


class RedisQueues:
    """Depths and dead letters under the deployment's Redis namespace."""

    kind = "redis"

    def __init__(self, url: str, names: BrokerNames, *, heartbeat_timeout_s: float) -> None:
        self.client = redis_client(url)
        self.ns = names.redis_namespace
        self.heartbeat_timeout_ms = int(heartbeat_timeout_s * 1000)

    def queues(self, queues: Sequence[str], *, now_ms: int) -> list[QueueStats]:
        return inspect_queues(
            self.client,
            queues,
            ns=self.ns,
            now_ms=now_ms,
            heartbeat_timeout_ms=self.heartbeat_timeout_ms,
        )

    def dead(
        self,
        queues: Sequence[str],
        *,
        now_ms: int,
        actor: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[DeadLetter]:
        return deadletters.list_dead(self.client, queues, ns=self.ns, actor=actor, ids=ids)

    def requeue(
        self,
        queues: Sequence[str],
        *,
        now_ms: int,
        actor: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> int:
        return deadletters.requeue_dead(
            self.client, queues, ns=self.ns, now_ms=now_ms, actor=actor, ids=ids
        )

    def purge(
        self,
        queues: Sequence[str],
        *,
        actor: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> int:
        return deadletters.purge_dead(self.client, queues, ns=self.ns, actor=actor, ids=ids)

    def close(self) -> None:
        self.client.close()


def queues_of(settings: Settings) -> BrokerQueues | None:
    """The view of the deployment's broker; ``None`` for the in-process stub broker."""
    names = BrokerNames.for_settings(settings)
    if names.kind == "redis":
        heartbeat_s = settings.timing.broker_heartbeat_timeout_s
        return RedisQueues(settings.broker_url, names, heartbeat_timeout_s=heartbeat_s)
    if names.kind == "rabbitmq":
        return RabbitmqQueues(settings.broker_url, names)
    return None


@contextmanager
def reading(settings: Settings) -> Iterator[BrokerQueues | None]:
    """:func:`queues_of`, closed afterwards; broker errors become :class:`BrokerUnavailable`."""
    view = queues_of(settings)
    try:
        yield view
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"cannot read the broker's Redis: {exc}") from exc
    except (pika.exceptions.AMQPError, OSError) as exc:
        raise BrokerUnavailable(f"cannot read RabbitMQ: {_describe(exc)}") from exc
    finally:
        if view is not None:
            try:
                view.close()
            except (redis.RedisError, pika.exceptions.AMQPError, OSError):
                pass  # closing a connection that failed


def _describe(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__
