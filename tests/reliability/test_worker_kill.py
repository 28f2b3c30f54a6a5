"""Fault 1: the worker's process group is killed with SIGKILL in the middle of a run, then a
new worker starts, on Redis and on RabbitMQ. Charges cut off before or after the gateway's
write are settled by looking them up; the dead worker's messages come back (on Redis once its
heartbeat is stale, on RabbitMQ as soon as its connection closes), or the producers find their
work again."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Pipeline
from tests.reliability.invariants import progress
from tests.reliability.run import finish, start, under_way

pytestmark = pytest.mark.reliability

# Each charge takes this long (half before the ledger write, half after), so the kill finds
# charges in flight on both sides of it.
SLOW_CHARGES = {"DUNNING_SANDBOX_DELAY_MS": "60"}


@pytest.mark.parametrize("broker_name", ["redis", "rabbitmq"])
@pytest.mark.timeout(300)
def test_a_worker_killed_mid_run_loses_nothing_and_charges_once(
    pipeline: Pipeline, broker_name: str
) -> None:
    run = start(pipeline, prefix="k", worker_env=SLOW_CHARGES)
    under_way(run)

    pipeline.daemons.kill("worker-1")
    run.mark("killed")
    at_kill = progress(pipeline)
    pipeline.start_worker("worker-2", **SLOW_CHARGES)

    figures = finish(
        run,
        "worker_sigkill" if broker_name == "redis" else "worker_sigkill_rabbitmq",
        # The one window SMTP leaves: accepted by the server, the worker killed before its
        # record. A copy sent again carries the same Message-ID.
        allow_duplicates=True,
        faults={
            "worker_sigkills": 1,
            "charges_in_flight_at_kill": at_kill["unresolved_attempts"],
            "paid_at_kill": at_kill["paid"],
        },
    )
    # The kill landed mid-run, with charges in flight.
    assert at_kill["paid"] < len(run.cases.paid)
    assert at_kill["unresolved_attempts"] > 0, "no charge was in flight when the worker died"
    assert figures["paid"] == len(run.cases.paid)
