"""Every Redis key the pipeline reads or writes, in one place.

They are dramatiq's Redis broker keys (dramatiq.brokers.redis), read by ``dunning queues`` and
``dlq``, and the web's rate-limit counts. Each lives under the deployment's namespace ``ns``:
:attr:`dunning.broker_names.BrokerNames.redis_namespace` (``dramatiq:<prefix>``).
"""

from __future__ import annotations

from dunning.broker_names import DRAMATIQ_NAMESPACE

__all__ = ["DRAMATIQ_NAMESPACE"]


def queue(name: str, ns: str) -> str:
    """Ready messages (a list of ids); the message bodies live in the ``.msgs`` hash."""
    return f"{ns}:{name}"


def queue_messages(name: str, ns: str) -> str:
    return f"{ns}:{name}.msgs"


def delayed(name: str, ns: str) -> str:
    return f"{ns}:{name}.DQ"


def dead(name: str, ns: str) -> str:
    """Dead letters: a sorted set of message ids scored by time of death."""
    return f"{ns}:{name}.XQ"


def delayed_messages(name: str, ns: str) -> str:
    """Bodies of delayed messages (retries waiting for their backoff), by Redis message id."""
    return f"{ns}:{name}.DQ.msgs"


def dead_messages(name: str, ns: str) -> str:
    """Bodies of dead letters, by Redis message id."""
    return f"{ns}:{name}.XQ.msgs"


def acks_prefix(ns: str) -> str:
    """Per-worker sets of fetched, unacknowledged ids: ``__acks__.<worker id>.<queue>[.DQ]``."""
    return f"{ns}:__acks__."


def heartbeats(ns: str) -> str:
    """Worker ids scored by their last heartbeat (ms); a stale worker's acks are orphaned."""
    return f"{ns}:__heartbeats__"


def rate_limit(ns: str, budget: str, key_digest: str) -> str:
    """A rate-limit budget's hits for one key (a sorted set of hit ids scored by time in ms;
    expires with its window). The key (customer id, address) is stored only as a digest."""
    return f"{ns}:__limits__:{budget}:{key_digest}"
