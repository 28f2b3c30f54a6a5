"""Fault 2: Redis is emptied (``FLUSHALL``) in the middle of a run. Every queued, delayed and
in-flight message is gone; the producers find the work again in the database once its leases
run out. (The scheduler's election lives in the database, so the flush leaves it alone.)"""

from __future__ import annotations

import pytest

from dunning.redis_keys import acks_prefix, delayed_messages, queue
from schedules.leader import current_leader
from tests.integration.conftest import Pipeline, as_text
from tests.reliability.invariants import progress
from tests.reliability.run import finish, start, under_way
from tests.reliability.servers import RedisServer
from workers.broker import QUEUES

pytestmark = pytest.mark.reliability


def messages_held(p: Pipeline) -> dict[str, int]:
    """Messages Redis holds for the pipeline: ready, delayed (retries) and unacknowledged."""
    r = p.redis
    acks = [as_text(k) for k in r.keys(acks_prefix(p.ns) + "*")]
    return {
        "ready": sum(int(r.llen(queue(q, p.ns))) for q in QUEUES),
        "delayed": sum(int(r.hlen(delayed_messages(q, p.ns))) for q in QUEUES),
        "unacked": sum(int(r.scard(k)) for k in acks),
    }


@pytest.mark.timeout(300)
def test_redis_flushed_mid_run_loses_no_case(pipeline: Pipeline, own_redis: RedisServer) -> None:
    run = start(pipeline, prefix="f")
    under_way(run)

    held = messages_held(pipeline)
    keys = int(pipeline.redis.dbsize())
    assert pipeline.redis.flushall()
    run.mark("flushed")
    at_flush = progress(pipeline)
    assert pipeline.redis.dbsize() < keys

    figures = finish(
        run,
        "redis_flushall",
        # Nothing crashed: every send that was accepted was also recorded.
        allow_duplicates=False,
        faults={
            "flushall": 1,
            "keys_flushed": keys,
            "messages_lost": held,
            "paid_at_flush": at_flush["paid"],
        },
    )
    assert at_flush["paid"] < len(run.cases.paid), "the flush came after the run"
    assert sum(held.values()) > 0, "Redis held no message when it was flushed"
    assert current_leader(pipeline.engine) is None  # the scheduler gave its lease back on stop
    assert figures["paid"] == len(run.cases.paid)
