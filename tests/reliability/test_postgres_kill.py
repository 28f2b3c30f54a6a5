"""Fault 6: every connection to the scratch database is killed (``pg_terminate_backend``) in
the middle of a run, several times. Transactions cut off roll back; actors fail and are retried;
charges whose answer was not recorded are looked up; the producers find the rest again."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.integration.conftest import Pipeline
from tests.reliability.invariants import progress
from tests.reliability.run import finish, start, under_way
from tests.services import PG_ADMIN_URL

pytestmark = pytest.mark.reliability

ROUNDS = 3
BETWEEN_S = 2.0


def terminate_backends(database: str) -> int:
    """Kill every backend connected to ``database``; from the admin database, not from it."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


@pytest.mark.timeout(300)
def test_database_connections_killed_mid_run_lose_no_case(pipeline: Pipeline) -> None:
    run = start(pipeline, prefix="d", worker_env={"DUNNING_SANDBOX_DELAY_MS": "20"})
    under_way(run)
    database = str(make_url(pipeline.env["DUNNING_DATABASE_URL"]).database)

    at_first = progress(pipeline)
    killed = []
    for i in range(ROUNDS):
        if i:
            time.sleep(BETWEEN_S)  # pacing of the rounds, not a wait for a result
        killed.append(terminate_backends(database))
        run.mark("terminated")

    figures = finish(
        run,
        "postgres_terminate",
        # A send's "sent" mark can be the transaction that is killed: the row is sent again
        # later with the same Message-ID.
        allow_duplicates=True,
        faults={
            "rounds": ROUNDS,
            "backends_terminated": killed,
            "paid_at_first_round": at_first["paid"],
        },
    )
    assert at_first["paid"] < len(run.cases.paid), "the kills came after the run"
    assert all(n > 0 for n in killed), killed
    assert figures["paid"] == len(run.cases.paid)
