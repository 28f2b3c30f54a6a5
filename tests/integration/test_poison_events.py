"""Stored webhook events the book cannot take, on a real worker, Redis and PostgreSQL: each
fails on its own, is marked ``failed`` with its error, and the events after it go through;
two copies of one event at once apply it once.

The poison rows are stored as the receiver stored them before it checked what the book can
hold (a last4 of five digits, an amount beyond a bigint); a third one meets an error that no
check can foresee (the database refuses the row). All three sit in one batch, ahead of three
good events.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text

from dunning.redis_keys import dead, delayed_messages, queue, queue_messages
from dunning.services import events as event_service
from dunning.services.events import process_event
from dunning.store.tables import (
    customers,
    invoices,
    payment_attempts,
    payment_methods,
    subscriptions,
)
from dunning.store.tables import webhook_events as events_table
from tests.integration.conftest import Pipeline, dunning_executable
from tests.unit.web.builders import quickpay_recurring, stripe_invoice_event

pytestmark = pytest.mark.integration

REFUSED_INVOICE = "in_refused_by_db"
TRIGGER = f"""
CREATE FUNCTION refuse_invoice() RETURNS trigger AS $$
BEGIN
    IF NEW.id = '{REFUSED_INVOICE}' THEN
        RAISE EXCEPTION 'numeric field overflow (test)' USING ERRCODE = '22003';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_invoice BEFORE INSERT ON invoices
    FOR EACH ROW EXECUTE FUNCTION refuse_invoice();
"""


@pytest.fixture
def refusing_db(pg_engine: Engine) -> Iterator[None]:
    """The database refuses one invoice row: an error the event's fields do not predict."""
    with pg_engine.begin() as conn:
        conn.execute(text(TRIGGER))
    try:
        yield
    finally:
        with pg_engine.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS refuse_invoice ON invoices"))
            conn.execute(text("DROP FUNCTION IF EXISTS refuse_invoice()"))


def seed_customers(engine: Engine, names: list[str], now: datetime) -> None:
    ts = {"created_at": now, "updated_at": now}
    with engine.begin() as conn:
        for n in names:
            conn.execute(
                insert(customers).values(
                    id=f"cus_{n}", email=f"{n}@customers.test", name=n, locale="en",
                    timezone="UTC", billing_emails=[], **ts,
                )
            )  # fmt: skip
            conn.execute(
                insert(payment_methods).values(
                    id=f"pm_{n}", customer_id=f"cus_{n}", gateway="sandbox", token=f"sbx_ok_{n}",
                    network="visa", last4="4242", exp_month=12, exp_year=now.year + 3,
                    is_default=True, **ts,
                )
            )  # fmt: skip
            conn.execute(
                insert(subscriptions).values(
                    id=f"sub_{n}", customer_id=f"cus_{n}", plan="default", amount=1900,
                    currency="EUR", payment_method_id=f"pm_{n}", status="active", **ts,
                )
            )  # fmt: skip


def stored(engine: Engine, provider: str, event_id: str, payload: Any, at: datetime) -> int:
    """Store an event as the receiver does: ``received``, unclaimed."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(events_table)
                .values(
                    provider=provider, event_id=event_id, type="test", payload=payload,
                    status="received", received_at=at,
                )
                .returning(events_table.c.id)
            ).scalar_one()
        )  # fmt: skip


def failing_stripe(n: str, invoice: str, at: datetime, **kw: Any) -> dict[str, Any]:
    return stripe_invoice_event(
        event_id=f"evt_{invoice}", invoice=invoice, subscription=f"sub_{n}", customer=f"cus_{n}",
        created=at, **kw,
    )  # fmt: skip


def cli_json(p: Pipeline, *args: str) -> Any:
    done = subprocess.run(
        [dunning_executable(), *args, "--json"], env=p.env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def event_rows(p: Pipeline) -> dict[int, Any]:
    with p.engine.connect() as conn:
        return {r["id"]: r for r in conn.execute(select(events_table)).mappings()}


@pytest.mark.timeout(180)
def test_poison_events_fail_alone_and_the_events_after_them_are_applied(
    pipeline: Pipeline, refusing_db: None
) -> None:
    now = datetime.now(UTC)
    seed_customers(pipeline.engine, ["a", "b", "c", "d", "e"], now)
    five_digits = quickpay_recurring(
        order_id="in_qp_new", subscription_id="sub_qp_new", customer="cus_a"
    )
    five_digits["metadata"]["last4"] = "00081"  # a new subscription's card: inserted, refused
    poison = {
        stored(pipeline.engine, "quickpay", "510002:1", five_digits, now): "card.last4",
        stored(
            pipeline.engine, "stripe", "evt_big",
            failing_stripe("b", "in_big", now, amount=2**63), now + timedelta(seconds=1),
        ): "amount_due",
        stored(
            pipeline.engine, "stripe", "evt_refused",
            failing_stripe("c", REFUSED_INVOICE, now), now + timedelta(seconds=2),
        ): "numeric field overflow (test)",
    }  # fmt: skip
    good = {
        stored(pipeline.engine, "stripe", f"evt_{n}", failing_stripe(n, f"in_{n}", now), at): n
        for n, at in (("d", now + timedelta(seconds=3)), ("e", now + timedelta(seconds=4)))
    }
    with pipeline.broker() as (_, c):
        c.dispatcher.process_events([*poison, *good])  # one batch, the poison first
    pipeline.start_worker()
    pipeline.start_scheduler()

    def settled() -> bool:
        rows = event_rows(pipeline)
        return all(rows[i]["status"] != "received" for i in [*poison, *good])

    pipeline.wait(settled, timeout_s=60, what="every event processed or failed")
    rows = event_rows(pipeline)
    for row_id, reason in poison.items():
        assert rows[row_id]["status"] == "failed", rows[row_id]
        assert reason in rows[row_id]["error"]
        assert rows[row_id]["processed_at"] is not None
    assert {rows[i]["status"] for i in good} == {"processed"}
    with pipeline.engine.connect() as conn:
        opened = set(conn.execute(select(invoices.c.id)).scalars())
        new_subs = conn.execute(select(subscriptions).where(subscriptions.c.id == "sub_qp_new"))
        assert new_subs.first() is None  # nothing half-written by the refused event
    assert opened == {"in_d", "in_e"}
    ns = pipeline.ns
    assert pipeline.redis.zcard(dead("events", ns)) == 0  # not dead-lettered
    assert pipeline.redis.hlen(delayed_messages("events", ns)) == 0  # no retry waiting
    assert pipeline.redis.hlen(queue_messages("events", ns)) == 0
    assert pipeline.redis.llen(queue("events", ns)) == 0

    listed = cli_json(pipeline, "dlq", "list")
    assert {e["id"]: e["error"] for e in listed["failed_events"]} == {
        i: rows[i]["error"] for i in poison
    }
    assert cli_json(pipeline, "status")["events_failed"] == len(poison)


@pytest.mark.timeout(60)
def test_two_copies_of_one_event_at_once_apply_it_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A redelivered message, or the producer's second offer, while the first copy is still
    being applied: the second copy finds the event taken and does nothing."""
    now = datetime.now(UTC)
    seed_customers(pipeline.engine, ["a"], now)
    row_id = stored(pipeline.engine, "stripe", "evt_a", failing_stripe("a", "in_a", now), now)
    inside, release = threading.Event(), threading.Event()
    real = event_service.apply

    def slow_apply(c: Any, event: Any, at: datetime) -> str:
        inside.set()
        release.wait(10)
        return real(c, event, at)

    monkeypatch.setattr(event_service, "apply", slow_apply)
    c = pipeline.container
    results: dict[str, str] = {}
    first = threading.Thread(target=lambda: results.update(first=process_event(c, row_id, now)))
    first.start()
    assert inside.wait(10)
    results["second"] = process_event(c, row_id, now)  # the first copy is inside apply
    release.set()
    first.join(10)

    assert results == {"first": "processed", "second": "skipped"}
    with pipeline.engine.connect() as conn:
        made = conn.execute(select(payment_attempts.c.attempt_no)).scalars().all()
    assert made == [1]
    assert event_rows(pipeline)[row_id]["status"] == "processed"
