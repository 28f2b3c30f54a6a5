"""Queue depths read from Redis exactly where dramatiq's Redis broker keeps them.

Per queue ``q`` under the deployment's namespace ``ns`` (see
``dramatiq/brokers/redis/dispatch.lua``): ready ids in the list ``ns:q`` with bodies in the hash
``ns:q.msgs``; delayed messages (retries waiting for their backoff) in ``ns:q.DQ`` /
``ns:q.DQ.msgs``; messages a worker fetched and has not acknowledged in the sets
``ns:__acks__.<worker>.q``; dead letters in the sorted set ``ns:q.XQ`` with bodies in
``ns:q.XQ.msgs``. Nothing here writes. (RabbitMQ's queues: :mod:`dunning.ops.rabbitmq`.)
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import redis

from dunning import redis_keys as keys


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    ready: int
    delayed: int
    # ``None`` where the broker does not say (RabbitMQ without its management API).
    in_flight: int | None
    # In flight on workers whose heartbeat stopped: back on the queue after maintenance runs.
    orphaned: int | None
    dead: int
    oldest_ready_age_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def redis_client(url: str) -> redis.Redis:
    """A client for inspection: bytes replies (as dramatiq uses), short timeouts."""
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def parse_message(data: bytes | str | None) -> dict[str, Any] | None:
    """A dramatiq message body (JSON, dramatiq's default encoder) as a dict; ``None`` if not."""
    if data is None:
        return None
    try:
        fields = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return fields if isinstance(fields, dict) and "actor_name" in fields else None


def _acks_by_queue(client: redis.Redis, ns: str) -> dict[str, list[tuple[str, str]]]:
    """``queue -> [(worker id, ack set key)]``; delay queues keep their ``.DQ`` suffix."""
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    prefix = keys.acks_prefix(ns)
    for raw in client.scan_iter(match=prefix + "*", count=1000):
        key = text(raw)
        worker, dot, queue = key[len(prefix) :].partition(".")
        if dot:
            found[queue].append((worker, key))
    return found


def inspect_queues(
    client: redis.Redis,
    queues: Sequence[str],
    *,
    ns: str,
    now_ms: int,
    heartbeat_timeout_ms: int,
) -> list[QueueStats]:
    """Ready, delayed, in-flight, orphaned and dead counts and the oldest ready age per queue."""
    acks = _acks_by_queue(client, ns)
    beats = client.zrangebyscore(keys.heartbeats(ns), 0, now_ms - heartbeat_timeout_ms)
    stale = {text(w) for w in cast(list[bytes], beats)}
    pipe = client.pipeline(transaction=False)
    for q in queues:
        pipe.llen(keys.queue(q, ns))
        pipe.hlen(keys.delayed_messages(q, ns))
        pipe.zcard(keys.dead(q, ns))
        pipe.lindex(keys.queue(q, ns), 0)
        for _, ack_key in acks.get(q, []):
            pipe.scard(ack_key)
    replies = iter(pipe.execute())
    counts = []
    for q in queues:
        ready, delayed, dead, head = (next(replies) for _ in range(4))
        in_flight = orphaned = 0
        for worker, _ in acks.get(q, []):
            n = int(next(replies))
            in_flight += n
            orphaned += n if worker in stale else 0
        counts.append((q, int(ready), int(delayed), in_flight, orphaned, int(dead), head))
    result = []
    for q, ready, delayed, in_flight, orphaned, dead, head in counts:
        age = None
        if head is not None:
            message = parse_message(client.hget(keys.queue_messages(q, ns), head))
            if message is not None and isinstance(message.get("message_timestamp"), int):
                age = max(now_ms - message["message_timestamp"], 0) / 1000
        result.append(QueueStats(q, ready, delayed, in_flight, orphaned, dead, age))
    return result
