"""Dead letters: list them, move them back to their queue, or delete them.

A dead letter is a message whose retries ran out (or that raised a permanent error). dramatiq
keeps it for seven days; on Redis in ``<ns>:<queue>.XQ`` (ids scored by time of death) with
its body in ``<ns>:<queue>.XQ.msgs``, ``ns`` being the deployment's namespace (on RabbitMQ in
the queue ``<queue>.XQ``: :mod:`dunning.ops.rabbitmq`). Requeueing puts the same body back on
the queue as a fresh message (retry count, traceback and delay cleared, timestamp set to now,
so the age limit does not drop it at once); on Redis each move is one Lua script, so two
operators requeueing at the same time move a message once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import redis

from dunning import redis_keys as keys
from dunning.ops.queues import parse_message, text

_CHUNK = 500
_SECRET_NAME = re.compile(r"token|secret|password|key|card|pan|cvc", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"^(sk|rk|pk|whsec|tok|card)_", re.IGNORECASE)

# KEYS: dead set, dead bodies, queue list, queue bodies. ARGV: id, new body.
_REQUEUE = """
if redis.call("zrem", KEYS[1], ARGV[1]) == 1 then
  redis.call("hdel", KEYS[2], ARGV[1])
  redis.call("hset", KEYS[4], ARGV[1], ARGV[2])
  redis.call("rpush", KEYS[3], ARGV[1])
  return 1
end
return 0
"""
# KEYS: dead set, dead bodies. ARGV: id.
_PURGE = """
local n = redis.call("zrem", KEYS[1], ARGV[1])
redis.call("hdel", KEYS[2], ARGV[1])
return n
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str  # the broker's id of this copy (the key in the dead set)
    queue: str
    actor: str
    message_id: str
    died_at_ms: int
    sent_at_ms: int | None
    retries: int
    args: str  # a short summary, secrets masked
    # The last line of the traceback the body carries: a retried copy carries the error before
    # it; dramatiq does not store the final one (it is in the worker's log).
    error: str | None

    def age_s(self, now_ms: int) -> float:
        return max(now_ms - self.died_at_ms, 0) / 1000

    def as_dict(self, now_ms: int) -> dict[str, Any]:
        return asdict(self) | {"age_s": self.age_s(now_ms)}


def _show(value: Any, depth: int = 0) -> str:
    if isinstance(value, str):
        return "***" if _SECRET_VALUE.match(value) else value[:40]
    if isinstance(value, list | tuple):
        if depth > 1:
            return "[…]"
        shown = ", ".join(_show(v, depth + 1) for v in value[:3])
        more = f", … {len(value)} items" if len(value) > 3 else ""
        return f"[{shown}{more}]"
    if isinstance(value, dict):
        return "{" + ", ".join(str(k)[:20] for k in list(value)[:5]) + "}"
    return str(value)[:40]


def summarize_args(args: Sequence[Any], kwargs: dict[str, Any], width: int = 100) -> str:
    """A short, secret-free view of a message's arguments (they should be ids anyway)."""
    parts = [_show(a) for a in args]
    parts += [
        f"{k}=***" if _SECRET_NAME.search(k) else f"{k}={_show(v)}" for k, v in kwargs.items()
    ]
    summary = ", ".join(parts)
    return summary if len(summary) <= width else summary[: width - 1] + "…"


def _last_line(traceback: Any) -> str | None:
    if not isinstance(traceback, str):
        return None
    lines = [line.strip() for line in traceback.strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else None


def _matching(
    client: redis.Redis, queue: str, ns: str, actor: str | None, ids: Sequence[str] | None
) -> Iterator[tuple[str, int, dict[str, Any] | None]]:
    """``(id, died at ms, parsed body)`` of the queue's dead letters, oldest death first."""
    wanted = set(ids) if ids is not None else None
    entries = cast(
        list[tuple[bytes, float]], client.zrange(keys.dead(queue, ns), 0, -1, withscores=True)
    )
    for start in range(0, len(entries), _CHUNK):
        chunk = [(text(member), int(score)) for member, score in entries[start : start + _CHUNK]]
        bodies = client.hmget(keys.dead_messages(queue, ns), [redis_id for redis_id, _ in chunk])
        for (redis_id, died_at), body in zip(chunk, bodies, strict=True):
            message = parse_message(body)
            name = message.get("actor_name") if message else None
            if (actor and name != actor) or (wanted is not None and redis_id not in wanted):
                continue
            yield redis_id, died_at, message


def dead_letter(
    queue: str, broker_id: str, died_at: int, message: dict[str, Any] | None
) -> DeadLetter:
    """A :class:`DeadLetter` from a dead message's parsed body (``None``: unreadable)."""
    m = message or {}
    options = m.get("options") or {}
    args = summarize_args(m.get("args") or [], m.get("kwargs") or {}) if m else "(unreadable)"
    return DeadLetter(
        id=broker_id,
        queue=queue,
        actor=str(m.get("actor_name", "?")),
        message_id=str(m.get("message_id", "?")),
        died_at_ms=died_at,
        sent_at_ms=m.get("message_timestamp"),
        retries=int(options.get("retries") or 0),
        args=args,
        error=_last_line(options.get("traceback")),
    )


def list_dead(
    client: redis.Redis,
    queues: Sequence[str],
    *,
    ns: str,
    actor: str | None = None,
    ids: Sequence[str] | None = None,
) -> list[DeadLetter]:
    """The dead letters of ``queues`` (oldest death first), filtered by actor and ids."""
    return [
        dead_letter(queue, redis_id, died_at, message)
        for queue in queues
        for redis_id, died_at, message in _matching(client, queue, ns, actor, ids)
    ]


def revive(message: dict[str, Any], queue: str, now_ms: int) -> bytes:
    """The body a dead message goes back with: same actor, args and ids; fresh otherwise."""
    options = {
        k: v
        for k, v in (message.get("options") or {}).items()
        if k not in ("retries", "traceback", "eta", "requeue_timestamp")
    }
    fresh = message | {"queue_name": queue, "options": options, "message_timestamp": now_ms}
    # dramatiq's JSON encoder writes compact JSON; any JSON decodes the same.
    return json.dumps(fresh, separators=(",", ":")).encode()


def requeue_dead(
    client: redis.Redis,
    queues: Sequence[str],
    *,
    ns: str,
    now_ms: int,
    actor: str | None = None,
    ids: Sequence[str] | None = None,
) -> int:
    """Move matching dead letters back to their queue; return how many moved."""
    script = client.register_script(_REQUEUE)
    moved = 0
    for queue in queues:
        script_keys = [
            keys.dead(queue, ns),
            keys.dead_messages(queue, ns),
            keys.queue(queue, ns),
            keys.queue_messages(queue, ns),
        ]
        for redis_id, _, message in list(_matching(client, queue, ns, actor, ids)):
            if message is None:
                continue  # an unreadable body would only die again; purge it instead
            body = revive(message, queue, now_ms)
            moved += int(script(keys=script_keys, args=[redis_id, body]))
    return moved


def purge_dead(
    client: redis.Redis,
    queues: Sequence[str],
    *,
    ns: str,
    actor: str | None = None,
    ids: Sequence[str] | None = None,
) -> int:
    """Delete matching dead letters; return how many were deleted."""
    script = client.register_script(_PURGE)
    deleted = 0
    for queue in queues:
        script_keys = [keys.dead(queue, ns), keys.dead_messages(queue, ns)]
        for redis_id, _, _ in list(_matching(client, queue, ns, actor, ids)):
            deleted += int(script(keys=script_keys, args=[redis_id]))
    return deleted
