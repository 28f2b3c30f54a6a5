"""Fault 10: a RabbitMQ node of the test's own is killed with SIGKILL in the middle of a run
and started again on the same port and data directory a few seconds later. Durable queues and
persistent (confirmed) messages come back with it; the workers reconnect, the scheduler keeps
its lease (the election lives in the database) and what could not be enqueued meanwhile is
found again by the producers once its claims' leases run out."""

from __future__ import annotations

import time

import pytest

from schedules.leader import current_leader
from tests.integration.conftest import Pipeline
from tests.reliability.invariants import progress
from tests.reliability.rabbit_node import RabbitNode
from tests.reliability.run import finish, start, under_way

pytestmark = pytest.mark.reliability

OUTAGE_S = 5.0


@pytest.mark.parametrize("broker_name", ["rabbitmq-node"])
@pytest.mark.timeout(360)
def test_rabbitmq_killed_and_restarted_mid_run_loses_no_case(
    pipeline: Pipeline, own_rabbitmq: RabbitNode
) -> None:
    run = start(pipeline, prefix="q")
    under_way(run)

    leader = current_leader(pipeline.engine)
    own_rabbitmq.kill()
    run.mark("killed")
    at_kill = progress(pipeline)
    time.sleep(OUTAGE_S)  # the outage itself, not a wait for a result
    during = progress(pipeline)
    assert leader is not None
    assert current_leader(pipeline.engine) == leader
    own_rabbitmq.start()  # returns once the node takes connections again
    run.mark("restarted")
    outage_s = round(run.marks["restarted"] - run.marks["killed"], 1)

    figures = finish(
        run,
        "rabbitmq_kill_restart",
        # Nothing that sends email crashed: a send whose acknowledgement was lost with the
        # broker is redelivered, finds its row sent and does nothing.
        allow_duplicates=False,
        faults={
            "rabbitmq_sigkills": 1,
            "outage_s": outage_s,
            "node_start_s": own_rabbitmq.start_s[-1],
            "paid_at_kill": at_kill["paid"],
            "paid_during_outage": during["paid"] - at_kill["paid"],
            "scheduler_led_through_outage": True,
        },
    )
    assert at_kill["paid"] < len(run.cases.paid), "the kill came after the run"
    assert own_rabbitmq.starts == 2
    assert figures["paid"] == len(run.cases.paid)
