"""Real ``dunning worker`` and ``dunning scheduler`` processes on Redis, PostgreSQL and SMTP:
due retries are charged once, duplicates change nothing, and a worker killed mid-charge
leaves no invoice charged twice."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import pytest
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from sqlalchemy import select

from dunning.mail.message import message_id_for
from dunning.mail.render import render_email
from dunning.redis_keys import acks_prefix, dead, queue, queue_messages
from dunning.store.attempts import idempotency_key
from dunning.store.tables import invoices, notifications, payment_attempts, subscriptions
from tests.integration.conftest import MAIL_FROM, as_text
from workers.broker import QUEUES

if TYPE_CHECKING:
    from sqlalchemy import RowMapping

    from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration
# Each sandbox charge of the worker that is killed takes this long (half before its ledger
# write, half after): long enough for a kill to land on either side of the write.
CHARGE_DELAY_MS = 1600


def attempts_by_invoice(p: Pipeline) -> dict[str, list[RowMapping]]:
    with p.engine.connect() as conn:
        rows = conn.execute(
            select(payment_attempts).order_by(payment_attempts.c.attempt_no)
        ).mappings()
        out: dict[str, list[RowMapping]] = defaultdict(list)
        for row in rows:
            out[row["invoice_id"]].append(row)
        return dict(out)


def outbox(p: Pipeline) -> list[RowMapping]:
    with p.engine.connect() as conn:
        return list(conn.execute(select(notifications)).mappings())


def outbox_settled(p: Pipeline) -> bool:
    """No email is still waiting to be sent."""
    return all(r["status"] in ("sent", "cancelled") for r in outbox(p))


def queue_drained(p: Pipeline, name: str = "charges") -> bool:
    """Every message of ``name`` was taken and acknowledged (none ready, none in flight)."""
    return p.redis.llen(queue(name, p.ns)) == 0 and p.redis.hlen(queue_messages(name, p.ns)) == 0


def assert_emails_match_outbox(p: Pipeline) -> list[Any]:
    """Each sent outbox row arrived exactly once over SMTP, and nothing else arrived."""
    rows = {r["message_id"]: r for r in outbox(p) if r["status"] == "sent"}
    received = Counter(str(m["Message-ID"]) for m in p.mail.messages())
    twice = [
        {k: rows[mid][k] for k in ("dedup_key", "send_attempts", "last_error", "sent_at")}
        for mid, count in received.items()
        if count > 1 and mid in rows
    ]
    assert max(received.values(), default=1) == 1, f"messages arrived twice: {twice}"
    assert set(received) == set(rows)
    for message in p.mail.messages():
        row = rows[str(message["Message-ID"])]
        assert message["Message-ID"] == message_id_for(row["dedup_key"], MAIL_FROM)
        assert message["To"] == row["to_addr"]
        assert message.get_content_type() == "multipart/alternative"
        parts = [part.get_content_type() for part in message.iter_parts()]
        assert parts == ["text/plain", "text/html"]
        brand = p.container.settings.brand
        expected = render_email(
            row["kind"],
            row["locale"],
            row["context"],
            brand_name=brand.name,
            support_email=brand.support_email,
        )
        assert message["Subject"] == expected.subject
    return list(rows.values())


@pytest.mark.timeout(180)
def test_due_retries_are_charged_once_each_and_the_customers_emailed(pipeline: Pipeline) -> None:
    n = 200
    ids = pipeline.seed_due_retries(n)
    pipeline.start_worker()
    pipeline.start_scheduler()

    pipeline.wait(lambda: pipeline.all_paid(ids), timeout_s=120, what=f"{n} invoices paid")
    recovered = {message_id_for(f"payment_recovered:{i}", MAIL_FROM) for i in ids}
    pipeline.wait(
        lambda: (
            recovered <= {str(m["Message-ID"]) for m in pipeline.mail.messages()}
            and outbox_settled(pipeline)
        ),
        timeout_s=60,
        what="a receipt for every invoice",
    )
    pipeline.daemons.stop_all()

    attempts = attempts_by_invoice(pipeline)
    assert set(attempts) == set(ids)
    for invoice_id, rows in attempts.items():
        assert [(r["attempt_no"], r["status"]) for r in rows] == [(1, "declined"), (2, "succeeded")]
        assert rows[1]["idempotency_key"] == idempotency_key(invoice_id, 2)
    ledger = pipeline.ledger()
    made = {rows[1]["idempotency_key"] for rows in attempts.values()}
    assert len(ledger) == len({e.idempotency_key for e in ledger}) == n
    assert {e.idempotency_key for e in ledger} == made
    assert {(e.status, e.amount, e.currency) for e in ledger} == {("succeeded", 1500, "USD")}
    with pipeline.engine.connect() as conn:
        invs = list(conn.execute(select(invoices).where(invoices.c.id.in_(ids))).mappings())
        subs = list(conn.execute(select(subscriptions.c.status)).scalars())
    assert {(i["status"], i["attempt_count"], i["next_attempt_at"]) for i in invs} == {
        ("paid", 2, None)
    }
    assert all(i["paid_at"] is not None for i in invs)
    assert subs == ["active"] * n

    sent = assert_emails_match_outbox(pipeline)
    kinds = Counter(r["kind"] for r in sent)
    assert kinds["payment_recovered"] == n
    # A "payment failed" email still pending when its invoice was paid is cancelled, not sent.
    assert set(kinds) <= {"payment_recovered", "payment_failed"}


@pytest.mark.timeout(90)
def test_a_charge_message_delivered_twice_charges_and_emails_once(pipeline: Pipeline) -> None:
    ids = pipeline.seed_due_retries(20)
    with pipeline.broker() as (broker, _):
        actor = broker.get_actor("charge_retry")
        for invoice_id in ids:
            for _ in range(2):
                broker.enqueue(actor.message([[invoice_id, 2]]))
        assert pipeline.redis.llen(queue("charges", pipeline.ns)) == 40
        pipeline.start_worker()  # no scheduler: only these messages can charge

        pipeline.wait(lambda: pipeline.all_paid(ids), timeout_s=60, what="20 invoices paid")
        pipeline.wait(
            lambda: queue_drained(pipeline) and queue_drained(pipeline, "emails"),
            timeout_s=30,
            what="all 40 charge messages and the email messages handled",
        )
        pipeline.wait(lambda: len(pipeline.mail.messages()) >= 20, timeout_s=30, what="20 receipts")
    pipeline.daemons.stop_all()

    ledger = pipeline.ledger()
    assert sorted(e.idempotency_key for e in ledger) == sorted(idempotency_key(i, 2) for i in ids)
    for invoice_id, rows in attempts_by_invoice(pipeline).items():
        assert [r["status"] for r in rows] == ["declined", "succeeded"], invoice_id
    assert pipeline.redis.zcard(dead("charges", pipeline.ns)) == 0
    sent = assert_emails_match_outbox(pipeline)
    assert sorted(r["dedup_key"] for r in sent) == sorted(f"payment_recovered:{i}" for i in ids)
    assert len(pipeline.mail.messages()) == 20


def unacked(p: Pipeline) -> dict[str, int]:
    """In-flight message sets of the workers, per Redis key, with their sizes."""
    keys = [as_text(k) for k in p.redis.keys(acks_prefix(p.ns) + "*")]
    return {k: int(p.redis.scard(k)) for k in keys if p.redis.scard(k)}


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_charge_leaves_every_invoice_paid_exactly_once(
    pipeline: Pipeline, request: pytest.FixtureRequest
) -> None:
    n = 40
    ids = pipeline.seed_due_retries(n)
    # Small batches: several messages in flight at once; slow charges: the kill lands mid-charge.
    pipeline.env["DUNNING_TIMING__SCAN_BATCH"] = "4"
    # The look-up of an unanswered charge must wait until the charge can no longer be running
    # (in production 120 s against a 30 s gateway timeout); a slow charge on a loaded machine
    # takes longer than the usual 2 s here.
    pipeline.env["DUNNING_TIMING__UNKNOWN_AFTER_S"] = str(3 * CHARGE_DELAY_MS / 1000)
    pipeline.env["DUNNING_TIMING__GATEWAY_TIMEOUT_S"] = str(1.5 * CHARGE_DELAY_MS / 1000)
    pipeline.start_scheduler()
    pipeline.start_worker("worker-1", DUNNING_SANDBOX_DELAY_MS=str(CHARGE_DELAY_MS))

    def pending() -> set[str]:
        with pipeline.engine.connect() as conn:
            return set(
                conn.execute(
                    select(payment_attempts.c.idempotency_key).where(
                        payment_attempts.c.status == "pending"
                    )
                ).scalars()
            )

    def both_sides() -> bool:
        """Charges in flight on both sides of the gateway's write: some made, some not yet."""
        in_flight, charged = pending(), {e.idempotency_key for e in pipeline.ledger()}
        return len(in_flight & charged) >= 2 and len(in_flight - charged) >= 2

    pipeline.wait(both_sides, timeout_s=40, what="charges in flight on both sides of the ledger")
    killed = pipeline.daemons.kill("worker-1")
    killed_at = time.monotonic()
    in_flight = pending()
    orphaned = unacked(pipeline)
    charged_before = {e.idempotency_key for e in pipeline.ledger()}
    assert killed.proc.returncode == -9
    # Killed after charging, before the answer was recorded; and before charging at all.
    assert in_flight & charged_before
    assert in_flight - charged_before
    assert orphaned, "the killed worker held unacknowledged messages"

    pipeline.start_worker("worker-2")
    # dramatiq requeues a dead worker's messages only during "maintenance", which each client
    # runs on a random 0.1% of its commands (minutes apart on a quiet broker); this client
    # runs it on every command, so the redelivery is seen as soon as the heartbeat is stale.
    probe = RedisBroker(  # type: ignore[no-untyped-call]
        url=pipeline.env["DUNNING_BROKER_URL"],
        namespace=pipeline.ns,
        heartbeat_timeout=5000,
        maintenance_chance=MAINTENANCE_SCALE,
    )
    try:

        def requeued() -> bool:
            for name in QUEUES:
                probe.do_qsize(name)
            return not any(pipeline.redis.exists(k) for k in orphaned)

        pipeline.wait(requeued, timeout_s=30, what="the dead worker's messages requeued")
        requeued_after_s = time.monotonic() - killed_at
        request.node.user_properties.append(("requeued_after_s", round(requeued_after_s, 2)))
    finally:
        probe.close()
    pipeline.wait(lambda: pipeline.all_paid(ids), timeout_s=60, what=f"{n} invoices paid")
    pipeline.wait(lambda: queue_drained(pipeline), timeout_s=30, what="redelivered messages done")
    pipeline.daemons.stop_all()

    # The heartbeat (5 s) went stale before anything was requeued.
    assert requeued_after_s >= 3.0
    attempts = attempts_by_invoice(pipeline)
    ledger = {e.idempotency_key: e for e in pipeline.ledger()}
    succeeded_per_invoice = Counter(
        e.idempotency_key.rsplit("_att_", 1)[0] for e in ledger.values() if e.status == "succeeded"
    )
    assert succeeded_per_invoice == Counter({f"inv_{i}": 1 for i in ids})
    for invoice_id, rows in attempts.items():
        statuses = [r["status"] for r in rows]
        assert statuses[0] == "declined", (invoice_id, statuses)
        assert statuses[-1] == "succeeded", (invoice_id, statuses)
        assert set(statuses[1:-1]) <= {"not_charged"}, (invoice_id, statuses)
        for r in rows[1:]:
            # The ledger agrees with every attempt: charged exactly when it says succeeded.
            assert (r["idempotency_key"] in ledger) == (r["status"] == "succeeded")
    by_key = {r["idempotency_key"]: r for rows in attempts.values() for r in rows}
    for key in in_flight:
        # Settled by the look-up: charged before the kill -> succeeded, else not charged.
        expected = "succeeded" if key in charged_before else "not_charged"
        assert by_key[key]["status"] == expected
    assert pipeline.redis.zcard(dead("charges", pipeline.ns)) == 0
