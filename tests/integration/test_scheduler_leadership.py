"""Two ``dunning scheduler`` processes on one database, on Redis and on RabbitMQ: exactly one
runs the producers, nothing is enqueued twice, a killed leader is replaced within the lease's
TTL plus a poll, and a leader that loses its database stands down before the other takes over.

Who leads is read from each scheduler's own log ("is active" / "stands by") and what it did
from its producers' log lines, so the test holds whatever the election is built on.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from dunning.store.attempts import idempotency_key
from dunning.store.tables import payment_attempts
from tests.integration.tcp_proxy import TcpProxy

if TYPE_CHECKING:
    from tests.integration.conftest import Daemon, Pipeline

pytestmark = pytest.mark.integration
BROKERS = pytest.mark.parametrize("broker_name", ["redis", "rabbitmq"])

TTL_S, POLL_S = 3.0, 0.5
# Longer than any charge takes here: an item enqueued twice within it is a bug, not a lease
# that ran out.
LEASE_S = 20
ENQUEUED = re.compile(r"^producer due_retries enqueued (\d+) items$")
ACTIVE = re.compile(r"^scheduler \S+ is active$")
STANDBY = re.compile(r"^scheduler \S+ stands by$")


def timing(p: Pipeline) -> None:
    p.env |= {
        "DUNNING_TIMING__LEADER_TTL_S": str(TTL_S),
        "DUNNING_TIMING__LEADER_POLL_S": str(POLL_S),
        "DUNNING_TIMING__CLAIM_LEASE_S": str(LEASE_S),
    }


def turns(daemon: Daemon) -> list[tuple[datetime, bool]]:
    """(when, leading) of each change of ``daemon``'s leadership, from its log."""
    out = []
    for line in daemon.json_lines():
        message = str(line.get("message", ""))
        if line.get("logger") == "schedules.daemon" and (
            ACTIVE.match(message) or STANDBY.match(message)
        ):
            out.append((datetime.fromisoformat(str(line["at"])), bool(ACTIVE.match(message))))
    return out


def leading(daemon: Daemon) -> bool:
    """Whether ``daemon`` runs and its last word was that it leads."""
    changes = turns(daemon)
    return daemon.proc.poll() is None and bool(changes) and changes[-1][1]


def enqueued_by(daemon: Daemon) -> list[tuple[datetime, int]]:
    """(time, count) of each due-retries run of ``daemon`` that enqueued something."""
    out = []
    for line in daemon.json_lines():
        m = ENQUEUED.match(str(line.get("message", "")))
        if m and line.get("logger") == "schedules.producers":
            out.append((datetime.fromisoformat(str(line["at"])), int(m.group(1))))
    return out


def enqueued(p: Pipeline, *daemons: Daemon, at_least: int) -> list[int]:
    """How many items each of ``daemons`` enqueued, once they enqueued ``at_least`` together
    (a producer logs its count after sending, so a worker may be done before the line is)."""

    def counts() -> list[int] | None:
        each = [sum(n for _, n in enqueued_by(d)) for d in daemons]
        return each if sum(each) >= at_least else None

    return p.wait(counts, timeout_s=30, what=f"{at_least} items enqueued")


def stream(p: Pipeline, leader: Daemon, other: Daemon, *, seconds: float, prefix: str) -> list[str]:
    """Add three due invoices every half second for ``seconds``; exactly ``leader`` leads
    at every sample."""
    ids: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ids += p.seed_due_retries(3, prefix=prefix)
        assert leading(leader), "the leader stopped leading"
        assert not leading(other), "two schedulers lead"
        p.daemons.check_alive()
        time.sleep(0.5)  # pacing of the stream, not a wait for a result
    return ids


def two_schedulers(p: Pipeline, **a_env: str) -> tuple[Daemon, Daemon]:
    """Scheduler a leads; b runs and stands by."""
    a = p.start_scheduler("scheduler-a", **a_env)
    p.wait(lambda: leading(a), timeout_s=30, what="a leads")
    b = p.start_scheduler("scheduler-b")
    # APScheduler logs this just before the daemon's leader-polling loop starts.
    p.wait(lambda: "Scheduler started" in b.log(), timeout_s=30, what="b polling")
    return a, b


def assert_each_retry_charged_once(p: Pipeline, invoice_ids: list[str]) -> None:
    with p.engine.connect() as conn:
        per_attempt = Counter(
            (row.invoice_id, row.attempt_no)
            for row in conn.execute(
                select(payment_attempts.c.invoice_id, payment_attempts.c.attempt_no)
            )
        )
        retries = conn.execute(
            select(func.count()).where(payment_attempts.c.attempt_no == 2)
        ).scalar_one()
    assert set(per_attempt.values()) == {1}
    assert retries == len(invoice_ids)
    assert sorted(e.idempotency_key for e in p.ledger()) == sorted(
        idempotency_key(i, 2) for i in invoice_ids
    )


@BROKERS
@pytest.mark.timeout(150)
def test_one_scheduler_leads_and_the_standby_takes_over_when_it_is_killed(
    pipeline: Pipeline, request: pytest.FixtureRequest
) -> None:
    timing(pipeline)
    pipeline.start_worker()
    a, b = two_schedulers(pipeline)

    first = stream(pipeline, a, b, seconds=12, prefix="a")
    pipeline.wait(lambda: pipeline.all_paid(first), timeout_s=60, what="the first stream paid")
    assert enqueued(pipeline, a, b, at_least=len(first)) == [len(first), 0], "both ran producers"

    # Kill the leader between runs with no due work left: nothing it claimed is unsent.
    killed_at = time.monotonic()
    pipeline.daemons.kill("scheduler-a")
    pipeline.wait(lambda: leading(b), timeout_s=15, what="b takes over")
    takeover_s = time.monotonic() - killed_at
    request.node.user_properties.append(("takeover_s", round(takeover_s, 2)))
    # The lease outlives its holder by its TTL (renewed at most one poll before the kill),
    # then b's next poll takes it; a second of slack for a loaded machine.
    assert TTL_S - POLL_S - 0.3 <= takeover_s <= TTL_S + POLL_S + 1.0, takeover_s

    second = stream(pipeline, b, a, seconds=5, prefix="b")
    pipeline.wait(lambda: pipeline.all_paid(second), timeout_s=60, what="the second stream paid")
    assert enqueued(pipeline, b, at_least=len(second)) == [len(second)]
    assert_each_retry_charged_once(pipeline, first + second)

    # A scheduler stopped gracefully gives the lease back: a third one leads within a poll.
    c = pipeline.start_scheduler("scheduler-c")
    pipeline.wait(lambda: "Scheduler started" in c.log(), timeout_s=30, what="c polling")
    stopped_at = time.monotonic()
    pipeline.daemons.stop("scheduler-b")
    pipeline.wait(lambda: leading(c), timeout_s=15, what="c takes over")
    assert time.monotonic() - stopped_at < TTL_S, "the stopped leader kept its lease"


@BROKERS
@pytest.mark.timeout(150)
def test_a_leader_that_loses_its_database_stands_down_before_the_other_takes_over(
    pipeline: Pipeline,
) -> None:
    timing(pipeline)
    url = pipeline.env["DUNNING_DATABASE_URL"]
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.start()
    try:
        pipeline.start_worker()
        a, b = two_schedulers(
            pipeline, DUNNING_DATABASE_URL=url.replace(":5432/", f":{proxy.port}/")
        )
        first = stream(pipeline, a, b, seconds=3, prefix="a")
        pipeline.wait(lambda: pipeline.all_paid(first), timeout_s=60, what="a's stream paid")

        cut_at = datetime.now().astimezone()
        proxy.cut()
        pipeline.wait(lambda: not leading(a), timeout_s=TTL_S + 5, what="a stands down")
        pipeline.wait(lambda: leading(b), timeout_s=TTL_S + 10, what="b takes over")
        a_down, b_up = turns(a)[-1][0], turns(b)[-1][0]
        # a stopped before its lease could have run out, and b took over only after that.
        assert (a_down - cut_at).total_seconds() < TTL_S, (cut_at, a_down)
        assert a_down < b_up, f"both led from {b_up} to {a_down}"

        proxy.restore()  # a reaches the database again, finds b leading, stays standing by
        second = pipeline.seed_due_retries(6, prefix="b")
        pipeline.wait(lambda: pipeline.all_paid(second), timeout_s=60, what="b's batch paid")
        assert not leading(a)
        assert enqueued(pipeline, b, at_least=len(second)) == [len(second)]
        assert all(at < a_down for at, _ in enqueued_by(a)), "a ran a producer after it stood down"
        assert_each_retry_charged_once(pipeline, first + second)
    finally:
        proxy.cut()
