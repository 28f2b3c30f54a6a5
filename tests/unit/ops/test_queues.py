"""Queue depths and dead letters, read from dramatiq's Redis layout (fakeredis with Lua)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import fakeredis
import pytest
from dramatiq.brokers.redis import RedisBroker

from dunning import redis_keys as keys
from dunning.broker_names import BrokerNames
from dunning.ops.deadletters import list_dead, purge_dead, requeue_dead, summarize_args
from dunning.ops.queues import inspect_queues

QUEUES = ("charges", "emails")
HEARTBEAT_MS = 60_000
# A deployment's own namespace (dunning.broker_names), as `dunning worker` runs with.
NS = BrokerNames("redis", "acme").redis_namespace


@dataclass
class Redis:
    broker: RedisBroker
    client: fakeredis.FakeRedis
    actor: dramatiq.Actor[Any, Any]
    calls: list[str] = field(default_factory=list)

    def stats(self, now_ms: int | None = None) -> dict[str, Any]:
        now_ms = now_ms or int(time.time() * 1000)
        return {
            s.queue: s
            for s in inspect_queues(
                self.client, QUEUES, ns=NS, now_ms=now_ms, heartbeat_timeout_ms=HEARTBEAT_MS
            )
        }

    def run_worker(self) -> None:
        worker = dramatiq.Worker(self.broker, worker_threads=1, worker_timeout=50)
        worker.start()
        try:
            self.broker.join("charges", timeout=20_000)
            worker.join()
        finally:
            worker.stop()


@pytest.fixture
def r() -> Iterator[Redis]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    broker = RedisBroker(client=client, namespace=NS)  # type: ignore[no-untyped-call]
    calls: list[str] = []

    def work(value: str) -> None:
        if value.startswith("boom"):
            raise RuntimeError("kaboom for " + value)
        calls.append(value)

    actor = dramatiq.Actor(
        work,
        broker=broker,
        actor_name="work",
        queue_name="charges",
        priority=0,
        options={"max_retries": 1, "min_backoff": 10, "max_backoff": 20, "max_age": 3_600_000},
    )
    broker.declare_queue("emails")
    broker.emit_after("process_boot")
    try:
        yield Redis(broker, client, actor, calls)
    finally:
        broker.close()


def test_counts_each_state_where_dramatiq_keeps_it(r: Redis) -> None:
    for value in ("a", "b", "c"):
        r.actor.send(value)
    r.actor.send_with_options(args=("later",), delay=60_000)
    consumer = r.broker.consume("charges", prefetch=1)
    taken = next(consumer)
    assert taken is not None
    s = r.stats()["charges"]
    assert (s.ready, s.delayed, s.in_flight, s.dead) == (2, 1, 1, 0)
    consumer.nack(taken)
    s = r.stats()["charges"]
    assert (s.ready, s.in_flight, s.dead) == (2, 0, 1)
    assert r.stats()["emails"].ready == 0
    assert r.stats()["emails"].oldest_ready_age_s is None


def test_oldest_ready_age_is_read_from_the_head_message(r: Redis) -> None:
    sent = r.actor.send("a")
    r.actor.send("b")
    s = r.stats(now_ms=sent.message_timestamp + 90_000)["charges"]
    assert s.oldest_ready_age_s == 90.0


def test_messages_held_by_a_dead_worker_count_as_orphaned(r: Redis) -> None:
    r.client.zadd(keys.heartbeats(NS), {"old-worker": 1})
    r.client.sadd(keys.acks_prefix(NS) + "old-worker.charges", "id1", "id2")
    r.client.zadd(keys.heartbeats(NS), {"live-worker": int(time.time() * 1000)})
    r.client.sadd(keys.acks_prefix(NS) + "live-worker.charges", "id3")
    s = r.stats()["charges"]
    assert (s.in_flight, s.orphaned) == (3, 2)


def test_a_failed_message_dies_and_requeue_makes_a_worker_process_it(r: Redis) -> None:
    r.actor.send("boom-1")
    r.run_worker()
    (letter,) = list_dead(r.client, QUEUES, ns=NS)
    assert (letter.actor, letter.queue, letter.args) == ("work", "charges", "boom-1")
    # the traceback of the failure before the last one travels with the retried copy
    assert (letter.retries, letter.error) == (1, "RuntimeError: kaboom for boom-1")
    assert list_dead(r.client, QUEUES, ns=NS, actor="other") == []
    assert list_dead(r.client, ["emails"], ns=NS) == []

    # the body goes back fresh: no retry count or traceback, timestamped now
    now_ms = int(time.time() * 1000)
    body = json.loads(r.client.hget(keys.dead_messages("charges", NS), letter.id) or b"{}")
    body["args"] = ["fixed"]  # what a fix in the data looks like to the actor: it now succeeds
    r.client.hset(keys.dead_messages("charges", NS), letter.id, json.dumps(body))
    assert requeue_dead(r.client, QUEUES, ns=NS, now_ms=now_ms, actor="work") == 1
    assert requeue_dead(r.client, QUEUES, ns=NS, now_ms=now_ms) == 0  # moved once
    revived = json.loads(r.client.hget(keys.queue_messages("charges", NS), letter.id) or b"{}")
    assert revived["message_timestamp"] == now_ms
    assert "traceback" not in revived["options"]
    assert "retries" not in revived["options"]
    assert r.stats()["charges"].dead == 0
    assert r.stats()["charges"].ready == 1
    r.run_worker()
    assert r.calls == ["fixed"]
    assert r.stats()["charges"].ready == 0


def test_purge_deletes_only_what_the_filters_match(r: Redis) -> None:
    r.actor.send("boom-1")
    r.actor.send("boom-2")
    r.run_worker()
    letters = list_dead(r.client, QUEUES, ns=NS)
    assert len(letters) == 2
    assert purge_dead(r.client, QUEUES, ns=NS, ids=[letters[0].id]) == 1
    assert [d.id for d in list_dead(r.client, QUEUES, ns=NS)] == [letters[1].id]
    assert purge_dead(r.client, QUEUES, ns=NS, actor="other") == 0
    assert purge_dead(r.client, QUEUES, ns=NS) == 1
    assert r.client.hlen(keys.dead_messages("charges", NS)) == 0


def test_argument_summaries_mask_secrets() -> None:
    summary = summarize_args([["in_1", 2], "sk_live_123", "whsec_abc"], {"token": "tok_9", "n": 3})
    assert summary == "[in_1, 2], ***, ***, token=***, n=3"
    many = summarize_args([[f"in_{i}" for i in range(50)]], {})
    assert many == "[in_0, in_1, in_2, … 50 items]"
