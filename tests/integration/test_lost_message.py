"""A charge message lost from Redis after its work was claimed is done anyway: the producer
claims the work again once the lease has run out (the database, not Redis, is the truth)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from dunning.redis_keys import queue, queue_messages
from dunning.store.attempts import idempotency_key
from dunning.store.tables import invoices, payment_attempts
from schedules.producers import due_retries

if TYPE_CHECKING:
    from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration

# Long enough for the worker and the scheduler to be up and idle while the lease still holds,
# even on a loaded machine (they take about 3 s to start, 9 s seen under load).
LEASE_S = 15


@pytest.mark.timeout(90)
def test_a_charge_message_deleted_from_redis_is_done_after_its_lease(pipeline: Pipeline) -> None:
    pipeline.env["DUNNING_TIMING__CLAIM_LEASE_S"] = str(LEASE_S)
    ids = pipeline.seed_due_retries(10)
    with pipeline.broker() as (_, producer):
        claimed_at = datetime.now(UTC)
        assert due_retries(producer, claimed_at) == 10  # no worker runs yet
    assert pipeline.redis.llen(queue("charges", pipeline.ns)) == 1  # one batch message for the ten
    with pipeline.engine.connect() as conn:
        leases = set(
            conn.execute(
                select(invoices.c.retry_claimed_until).where(invoices.c.id.in_(ids))
            ).scalars()
        )
    assert len(leases) == 1
    lease_end = leases.pop()
    assert (lease_end - claimed_at).total_seconds() == pytest.approx(LEASE_S)

    # The message is lost before any worker took it.
    ns = pipeline.ns
    assert pipeline.redis.delete(queue("charges", ns), queue_messages("charges", ns)) == 2
    worker = pipeline.start_worker()
    scheduler = pipeline.start_scheduler()
    pipeline.wait(
        lambda: "ready for action" in worker.log() and " is active" in scheduler.log(),
        timeout_s=30,
        what="the worker and the scheduler up",
    )
    assert datetime.now(UTC) < lease_end, "the daemons came up too late to test the lease"

    pipeline.wait(lambda: pipeline.all_paid(ids), timeout_s=60, what="the ten invoices paid")
    pipeline.daemons.stop_all()

    with pipeline.engine.connect() as conn:
        retries = list(
            conn.execute(
                select(payment_attempts).where(payment_attempts.c.attempt_no == 2)
            ).mappings()
        )
    assert sorted(r["invoice_id"] for r in retries) == sorted(ids)
    assert {r["status"] for r in retries} == {"succeeded"}
    # Nothing was charged while the lost message's lease held the work; soon after it, all.
    assert min(r["created_at"] for r in retries) >= lease_end
    assert (max(r["created_at"] for r in retries) - lease_end).total_seconds() < 15
    assert sorted(e.idempotency_key for e in pipeline.ledger()) == sorted(
        idempotency_key(i, 2) for i in ids
    )
