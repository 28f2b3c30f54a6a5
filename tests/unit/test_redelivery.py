"""A dead worker's unacknowledged messages go back on their queue when any live worker runs
maintenance, not when chance has it (fakeredis with dramatiq's own Lua scripts)."""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
import fakeredis
import pytest
from dramatiq.brokers.redis import RedisBroker

from dunning import redis_keys as keys
from workers.redelivery import Redelivery, requeue_orphans

HEARTBEAT_MS = 600
ns = "dramatiq"  # the namespace of the brokers built below


def broker_on(server: fakeredis.FakeServer) -> RedisBroker:
    client = fakeredis.FakeRedis(server=server)
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        client=client, heartbeat_timeout=HEARTBEAT_MS, maintenance_chance=0
    )
    broker.declare_queue("emails")
    return broker


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


def take_and_die(server: fakeredis.FakeServer, n: int) -> tuple[RedisBroker, list[Any]]:
    """A worker fetches ``n`` messages, then dies: they stay unacknowledged under its id."""
    dead = broker_on(server)
    actor: dramatiq.Actor[Any, Any] = dramatiq.Actor(
        lambda i: None, broker=dead, actor_name="send", queue_name="emails", priority=0, options={}
    )
    for i in range(n):
        actor.send(i)
    consumer = dead.consume("emails", prefetch=n)
    taken = [next(consumer) for _ in range(n)]
    assert all(m is not None for m in taken)
    assert dead.client.llen(keys.queue("emails", ns)) == 0
    return dead, taken


def test_a_stale_workers_messages_are_requeued_by_one_maintenance_run(
    server: fakeredis.FakeServer,
) -> None:
    dead, _ = take_and_die(server, 3)
    live = broker_on(server)
    requeue_orphans(live, ["emails"])
    assert live.client.llen(keys.queue("emails", ns)) == 0  # its heartbeat is still fresh
    stale_ms = int(time.time() * 1000) - 2 * HEARTBEAT_MS
    live.client.zadd(keys.heartbeats(ns), {dead.broker_id: stale_ms})
    requeue_orphans(live, ["emails"])
    assert live.client.llen(keys.queue("emails", ns)) == 3
    assert not live.client.keys(f"{keys.acks_prefix(ns)}{dead.broker_id}*")


def test_the_middleware_requeues_them_within_the_heartbeat_timeout(
    server: fakeredis.FakeServer,
) -> None:
    take_and_die(server, 2)  # its last heartbeat was just now; it never beats again
    live = broker_on(server)
    middleware = Redelivery()
    middleware.after_worker_boot(live, None)
    try:
        deadline = time.monotonic() + 10
        while live.client.llen(keys.queue("emails", ns)) < 2:
            assert time.monotonic() < deadline, "the dead worker's messages never came back"
            threading.Event().wait(0.05)
    finally:
        middleware.before_worker_shutdown(live, None)
