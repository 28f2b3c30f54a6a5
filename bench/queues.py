"""The harness's own side of the broker: the bench process's container, fast enqueueing of
baseline messages, and whether a queue is drained."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from config.settings import load_settings
from dunning.bootstrap import Container, bootstrap
from workers.broker import make_broker, setup


@contextmanager
def producer_container(redis_url: str, database_url: str) -> Iterator[Container]:
    """A container wired to this run's database and Redis broker, as the scheduler has it."""
    settings = load_settings(database_url=database_url, broker_url=redis_url, queue_prefix="")
    c = bootstrap(settings)
    broker = setup(c, make_broker(redis_url))
    try:
        yield c
    finally:
        broker.close()
        c.close()


def enqueue_pipelined(broker: RedisBroker, messages: Iterable[dramatiq.Message[Any]]) -> int:
    """Enqueue ``messages`` with dramatiq's own script, a thousand per round trip.

    Baselines use this so that feeding them costs next to nothing; returns how many were sent.
    """
    dispatch = broker.scripts["dispatch"]
    pipe = broker.client.pipeline(transaction=False)
    sent = 0
    for message in messages:
        # The consumer acknowledges a message by this id, which travels inside the body.
        redis_id = str(uuid.uuid4())
        body = message.copy(options={"redis_message_id": redis_id}).encode()
        args = ["enqueue", int(time.time() * 1000), message.queue_name, broker.broker_id,
                broker.heartbeat_timeout, broker.dead_message_ttl, 0, 0,
                redis_id, body]  # fmt: skip
        dispatch(keys=[broker.namespace], args=args, client=pipe)
        sent += 1
        if sent % 1000 == 0:
            pipe.execute()
    pipe.execute()
    return sent


def drained(client: redis.Redis, queue: str) -> bool:
    """No message of ``queue`` is waiting or unacknowledged (held by a worker)."""
    return (
        int(client.llen(f"dramatiq:{queue}")) == 0
        and int(client.hlen(f"dramatiq:{queue}.msgs")) == 0
    )
