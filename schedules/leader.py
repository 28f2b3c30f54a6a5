"""Exactly one active scheduler: a Redis lock with a TTL that the leader renews.

A standby polls; when the leader dies its key expires and the standby takes over within the TTL
plus one polling interval. Producers are safe to run twice anyway (database claims).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Protocol

import redis

from dunning.redis_keys import SCHEDULER_LEADER

log = logging.getLogger(__name__)

# Renew or release only while the key still holds our identity.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Leadership(Protocol):
    identity: str

    def acquire_or_renew(self) -> bool:
        """Take the lock if free, renew it if ours; ``True`` while we lead."""
        ...

    def release(self) -> None: ...


def new_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RedisLeadership:
    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_s: float,
        key: str = SCHEDULER_LEADER,
        identity: str | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.identity = identity or new_identity()
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self.leading = False

    def acquire_or_renew(self) -> bool:
        try:
            if self.leading and self._renew(keys=[self.key], args=[self.identity, self.ttl_ms]):
                return True
            got = bool(self.client.set(self.key, self.identity, nx=True, px=self.ttl_ms))
        except redis.RedisError as exc:
            # Without Redis we cannot know whether another scheduler leads: stand down.
            log.warning("leader lock unavailable: %s", exc)
            got = False
        if got != self.leading:
            log.info("scheduler %s %s leadership", self.identity, "took" if got else "lost")
        self.leading = got
        return got

    def release(self) -> None:
        try:
            self._release(keys=[self.key], args=[self.identity])
        except redis.RedisError:
            pass  # the TTL releases it anyway
        self.leading = False


class LocalLeadership:
    """For the embedded default (one process): always the leader."""

    def __init__(self) -> None:
        self.identity = new_identity()

    def acquire_or_renew(self) -> bool:
        return True

    def release(self) -> None:
        return None
