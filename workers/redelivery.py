"""Dead workers' messages back on their queues within a heartbeat timeout or so, every time.

On Redis, dramatiq puts the unacknowledged messages of a worker whose heartbeat went stale
back on a queue only when "maintenance" runs on that queue, which it does by chance (a share
of the commands sent on the queue). A quiet queue can wait minutes. Each worker process here
runs maintenance on every queue a few times per heartbeat timeout, so a worker killed in the
middle of a burst has its messages redelivered within about ``heartbeat_timeout * 4 / 3``.
RabbitMQ redelivers a dead consumer's messages by itself when its connection closes.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
# Maintenance runs this many times per heartbeat timeout.
ROUNDS_PER_TIMEOUT = 3


def requeue_orphans(broker: RedisBroker, queues: list[str]) -> None:
    """Run dramatiq's own maintenance on each queue (and its delay queue) now.

    It is dramatiq's dispatch script with its maintenance flag set and a fetch of nothing:
    unacknowledged messages of workers whose heartbeat is older than the broker's
    ``heartbeat_timeout`` go back on their queue, and old dead letters expire.
    """
    dispatch = broker.scripts["dispatch"]
    for queue in queues:
        for name in (queue, f"{queue}.DQ"):
            dispatch(
                args=[
                    "fetch",
                    int(time.time() * 1000),
                    name,
                    broker.broker_id,
                    broker.heartbeat_timeout,
                    broker.dead_message_ttl,
                    1,  # do the maintenance
                    1000,  # the most ids unpacked at once (dead letters are deleted in chunks)
                    0,  # fetch no message
                ],
                keys=[broker.namespace],
            )


class Redelivery(Middleware):
    """Runs :func:`requeue_orphans` on the worker's queues from a daemon thread."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        if not isinstance(broker, RedisBroker):
            return
        interval_s = broker.heartbeat_timeout / 1000 / ROUNDS_PER_TIMEOUT
        queues = sorted(q for q in broker.get_declared_queues() if not q.endswith(".DQ"))

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    requeue_orphans(broker, queues)
                except RedisError as exc:  # the broker is down: the next round tries again
                    log.warning("could not look for a dead worker's messages: %s", exc)

        threading.Thread(target=run, name="redelivery", daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()
