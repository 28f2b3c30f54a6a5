"""Every Redis key the pipeline reads or writes, in one place."""

from __future__ import annotations

# The scheduler's leader lock: holds the identity of the active scheduler, with a TTL.
SCHEDULER_LEADER = "dunning:scheduler:leader"

# dramatiq's Redis broker keys (dramatiq.brokers.redis), read by `dunning queues` and `dlq`.
DRAMATIQ_NAMESPACE = "dramatiq"


def queue(name: str) -> str:
    """Ready messages (a list of ids); the message bodies live in the ``.msgs`` hash."""
    return f"{DRAMATIQ_NAMESPACE}:{name}"


def queue_messages(name: str) -> str:
    return f"{DRAMATIQ_NAMESPACE}:{name}.msgs"


def delayed(name: str) -> str:
    return f"{DRAMATIQ_NAMESPACE}:{name}.DQ"


def dead(name: str) -> str:
    """Dead letters: a sorted set of message ids scored by time of death."""
    return f"{DRAMATIQ_NAMESPACE}:{name}.XQ"


def acks_pattern(name: str) -> str:
    """Per-worker sets of in-flight (unacked) message ids for a queue."""
    return f"{DRAMATIQ_NAMESPACE}:__acks__.*.{name}"


def delayed_messages(name: str) -> str:
    """Bodies of delayed messages (retries waiting for their backoff), by Redis message id."""
    return f"{DRAMATIQ_NAMESPACE}:{name}.DQ.msgs"


def dead_messages(name: str) -> str:
    """Bodies of dead letters, by Redis message id."""
    return f"{DRAMATIQ_NAMESPACE}:{name}.XQ.msgs"


# Per-worker sets of fetched, unacknowledged ids: ``__acks__.<worker id>.<queue>[.DQ]``.
ACKS_PREFIX = f"{DRAMATIQ_NAMESPACE}:__acks__."

# Worker ids scored by their last heartbeat (ms); a stale worker's acks are orphaned.
HEARTBEATS = f"{DRAMATIQ_NAMESPACE}:__heartbeats__"
