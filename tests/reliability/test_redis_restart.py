"""Fault 3: the Redis server (append-only, in a temporary directory) is killed with SIGKILL
in the middle of a run and started again on the same port a few seconds later. Workers and the
scheduler ride out the outage; what the AOF did not keep is found again by the producers."""

from __future__ import annotations

import time

import pytest

from schedules.leader import current_leader
from tests.integration.conftest import Pipeline
from tests.reliability.invariants import progress
from tests.reliability.run import finish, start, under_way
from tests.reliability.servers import RedisServer

pytestmark = pytest.mark.reliability

OUTAGE_S = 5.0


@pytest.mark.timeout(300)
def test_redis_killed_and_restarted_mid_run_loses_no_case(
    pipeline: Pipeline, own_redis: RedisServer
) -> None:
    run = start(pipeline, prefix="r")
    under_way(run)

    leader = current_leader(pipeline.engine)
    own_redis.kill()
    run.mark("killed")
    at_kill = progress(pipeline)
    time.sleep(OUTAGE_S)  # the outage itself, not a wait for a result
    during = progress(pipeline)
    # The election lives in the database: the scheduler kept leading without Redis.
    assert leader is not None
    assert current_leader(pipeline.engine) == leader
    own_redis.start()
    run.mark("restarted")
    outage_s = round(run.marks["restarted"] - run.marks["killed"], 1)

    figures = finish(
        run,
        "redis_kill_restart",
        allow_duplicates=False,
        faults={
            "redis_sigkills": 1,
            "outage_s": outage_s,
            "paid_at_kill": at_kill["paid"],
            "paid_during_outage": during["paid"] - at_kill["paid"],
            "scheduler_led_through_outage": True,
        },
    )
    assert at_kill["paid"] < len(run.cases.paid), "the kill came after the run"
    assert own_redis.starts == 2
    assert figures["paid"] == len(run.cases.paid)
