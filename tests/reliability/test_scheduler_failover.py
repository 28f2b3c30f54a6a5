"""Fault 7: two schedulers run; the leader is killed with SIGKILL in the middle of a run. The
standby takes over when the leader's lease (a row in the database) runs out, and what the dead
leader had claimed is found again once the claims' leases run out. The same on RabbitMQ: the
election does not depend on the broker."""

from __future__ import annotations

import pytest

from schedules.leader import current_leader
from tests.integration.conftest import Pipeline, wait_until
from tests.reliability.invariants import progress
from tests.reliability.run import finish, start, under_way

pytestmark = pytest.mark.reliability


def leader_pid(p: Pipeline) -> int | None:
    """The pid in the identity holding the leader lease (``host:pid:nonce``), if any."""
    holder = current_leader(p.engine)
    return int(holder.split(":")[-2]) if holder else None


@pytest.mark.parametrize("broker_name", ["redis", "rabbitmq"])
@pytest.mark.timeout(300)
def test_the_leader_scheduler_killed_mid_run_loses_no_case(
    pipeline: Pipeline, broker_name: str
) -> None:
    a = pipeline.start_scheduler("scheduler-a")
    wait_until(
        lambda: leader_pid(pipeline) == a.pid,
        timeout_s=60,
        what="a leads",
        alive=pipeline.daemons.check_alive,
    )
    b = pipeline.start_scheduler("scheduler-b")
    run = start(pipeline, prefix="s", scheduler=False)
    under_way(run)

    assert leader_pid(pipeline) == a.pid, "the leader changed before the kill"
    pipeline.daemons.kill("scheduler-a")
    run.mark("leader_killed")
    at_kill = progress(pipeline)
    wait_until(
        lambda: leader_pid(pipeline) == b.pid,
        timeout_s=30,
        what="b takes over",
        alive=pipeline.daemons.check_alive,
    )
    takeover_s = run.since("leader_killed")
    ttl_s = float(pipeline.env["DUNNING_TIMING__LEADER_TTL_S"])

    finish(
        run,
        "scheduler_failover" if broker_name == "redis" else "scheduler_failover_rabbitmq",
        allow_duplicates=False,
        faults={
            "leader_sigkills": 1,
            "takeover_s": takeover_s,
            "leader_ttl_s": ttl_s,
            "paid_at_kill": at_kill["paid"],
        },
    )
    assert at_kill["paid"] < len(run.cases.paid), "the kill came after the run"
    # The lease outlives its holder by at most its TTL; a poll later the standby has it.
    assert takeover_s <= ttl_s + 3.0, takeover_s
