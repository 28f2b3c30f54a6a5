"""Two ``dunning scheduler`` processes on one Redis: one leads, the other stands by, nothing is
enqueued twice, and when the leader is killed the standby takes over within TTL + poll."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from dunning.redis_keys import SCHEDULER_LEADER
from dunning.store.attempts import idempotency_key
from dunning.store.tables import payment_attempts
from tests.integration.conftest import as_text

if TYPE_CHECKING:
    from tests.integration.conftest import Daemon, Pipeline

pytestmark = pytest.mark.integration

TTL_S, POLL_S = 3.0, 0.5
# Longer than any charge takes here: an item enqueued twice within it is a bug, not a lease
# that ran out.
LEASE_S = 20
ENQUEUED = re.compile(r"^producer due_retries enqueued (\d+) items$")


def leader_pid(p: Pipeline) -> int | None:
    """The pid in the identity the leader key holds (``host:pid:nonce``), if any."""
    raw = p.redis.get(SCHEDULER_LEADER)
    return int(as_text(raw).split(":")[-2]) if raw else None


def enqueued_by(daemon: Daemon) -> list[tuple[str, int]]:
    """(time, count) of each due-retries run of ``daemon`` that enqueued something."""
    out = []
    for line in daemon.json_lines():
        m = ENQUEUED.match(str(line.get("message", "")))
        if m and line.get("logger") == "schedules.producers":
            out.append((str(line["at"]), int(m.group(1))))
    return out


def stream(
    p: Pipeline, *, seconds: float, per_tick: int, prefix: str
) -> tuple[list[str], set[int]]:
    """Add due invoices every half second for ``seconds``; sample the leader key meanwhile."""
    ids: list[str] = []
    leaders: set[int] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ids += p.seed_due_retries(per_tick, prefix=prefix)
        pid = leader_pid(p)
        assert pid is not None, "no scheduler holds the leader key"
        leaders.add(pid)
        p.daemons.check_alive()
        time.sleep(0.5)  # pacing of the stream, not a wait for a result
    return ids, leaders


@pytest.mark.timeout(150)
def test_one_scheduler_leads_and_the_standby_takes_over_when_it_is_killed(
    pipeline: Pipeline, request: pytest.FixtureRequest
) -> None:
    pipeline.env |= {
        "DUNNING_TIMING__LEADER_TTL_S": str(TTL_S),
        "DUNNING_TIMING__LEADER_POLL_S": str(POLL_S),
        "DUNNING_TIMING__CLAIM_LEASE_S": str(LEASE_S),
    }
    pipeline.start_worker()
    a = pipeline.start_scheduler("scheduler-a")
    pipeline.wait(lambda: leader_pid(pipeline) == a.pid, timeout_s=30, what="a leads")
    b = pipeline.start_scheduler("scheduler-b")
    # APScheduler logs this just before the daemon's leader-polling loop starts.
    pipeline.wait(lambda: "Scheduler started" in b.log(), timeout_s=30, what="b polling")

    first, leaders = stream(pipeline, seconds=12, per_tick=3, prefix="a")
    pipeline.wait(lambda: pipeline.all_paid(first), timeout_s=60, what="the first stream paid")
    assert leaders == {a.pid}, "the leader key named another scheduler while both ran"
    assert sum(n for _, n in enqueued_by(a)) == len(first)
    assert enqueued_by(b) == []

    # Kill the leader between runs with no due work left: nothing it claimed is unsent.
    killed_at = time.monotonic()
    pipeline.daemons.kill("scheduler-a")
    pipeline.wait(lambda: leader_pid(pipeline) == b.pid, timeout_s=15, what="b takes over")
    takeover_s = time.monotonic() - killed_at
    request.node.user_properties.append(("takeover_s", round(takeover_s, 2)))
    # The key lives out its TTL (renewed at most one poll before the kill), then b's next poll
    # takes it; a second of slack for a loaded machine.
    assert TTL_S - POLL_S - 0.3 <= takeover_s <= TTL_S + POLL_S + 1.0, takeover_s

    second, leaders = stream(pipeline, seconds=5, per_tick=3, prefix="b")
    pipeline.wait(lambda: pipeline.all_paid(second), timeout_s=60, what="the second stream paid")
    assert leaders == {b.pid}
    assert sum(n for _, n in enqueued_by(b)) == len(second)

    with pipeline.engine.connect() as conn:
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
    assert retries == len(first) + len(second)
    ledger = pipeline.ledger()
    assert sorted(e.idempotency_key for e in ledger) == sorted(
        idempotency_key(i, 2) for i in first + second
    )

    # A scheduler stopped gracefully gives the lock back at once.
    pipeline.daemons.stop("scheduler-b")
    assert pipeline.redis.get(SCHEDULER_LEADER) is None
