"""Each set-based service function (answers, settlement, subscription moves, invoice emails)
leaves the store exactly as calling it for each item in turn: the same rows, audit entries,
emails and merchant events. Two identical books on SQLite with the in-memory twins (nothing
is enqueued), one per way, compared table by table.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, insert, select

from config.settings import load_settings
from dunning.bootstrap import bootstrap
from dunning.clock import VirtualClock
from dunning.gateways.base import ChargeResult, Decline
from dunning.gateways.ledger import MemoryLedger
from dunning.gateways.sandbox import SandboxGateway
from dunning.mail.transport import MemoryTransport
from dunning.model import Initiator, SubscriptionStatus
from dunning.services.attempt_results import apply_answers
from dunning.services.case import load_case, load_cases
from dunning.services.charging import ChargeOrder, prepare
from dunning.services.failures import FailedCharge, record_failure
from dunning.services.invoice_emails import queue_invoice_emails
from dunning.services.settlement import Payment, settle
from dunning.services.subscription_state import move_subscription, move_subscriptions
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from dunning.store.tables import (
    invoices,
    metadata,
    notifications,
    outbound_events,
    payment_attempts,
    subscriptions,
    webhook_endpoints,
)
from dunning.store.uow import transaction
from tests.unit.pipeline.conftest import START, Pipeline

CUSTOMERS = ("cus_1", "cus_2", "cus_3", "cus_4")
SOFT = Decline("insufficient_funds", "51")


def _book(path: Path) -> Pipeline:
    """Four customers whose renewal failed, and one merchant endpoint that wants every event."""
    settings = load_settings(database_url=f"sqlite:///{path}")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    clock = VirtualClock(START)
    gateway = SandboxGateway(MemoryLedger(), clock=clock.now)
    mail = MemoryTransport()
    c = bootstrap(settings, clock=clock, engine=engine, gateway=gateway, transport=mail)
    # No broker and no worker: the container's null dispatcher enqueues nothing.
    book = Pipeline(c, clock, gateway, mail, broker=None)  # type: ignore[arg-type]
    for cid in CUSTOMERS:
        book.add_customer(cid, token=f"sbx_ok_{cid}", currency="USD" if cid == "cus_2" else "EUR")
    now = clock.now()
    with engine.begin() as conn:
        conn.execute(
            insert(webhook_endpoints).values(
                url="https://merchant.example/hooks",
                secret="whsec_test",
                event_types=[],
                created_at=now,
                updated_at=now,
            )
        )
    for cid in CUSTOMERS:
        failure = FailedCharge(f"in_{cid}", f"sub_{cid}", 12500, "EUR", SOFT, now)
        assert record_failure(c, failure, now) == "recorded"
    return book


@pytest.fixture
def twins(tmp_path: Path) -> Iterator[tuple[Pipeline, Pipeline]]:
    a, b = _book(tmp_path / "batch.sqlite3"), _book(tmp_path / "each.sqlite3")
    yield a, b
    for book in (a, b):
        book.c.engine.dispose()


def snapshot(book: Pipeline) -> dict[str, list[str]]:
    """Every table's rows, without generated integer ids and webhook-ids, in a stable order."""
    tables: dict[str, list[str]] = {}
    with book.c.engine.connect() as conn:
        for table in metadata.sorted_tables:
            generated = {col.name for col in table.primary_key if isinstance(col.type, Integer)}
            if table is outbound_events:
                generated.add("message_id")  # a fresh uuid per event
            rows = []
            for row in conn.execute(select(table)).mappings():
                kept = {k: v for k, v in row.items() if k not in generated}
                rows.append(repr(sorted(kept.items(), key=lambda kv: kv[0])))
            tables[table.name] = sorted(rows)
    return tables


def _rows(book: Pipeline, table: Any) -> list[Any]:
    with book.c.engine.connect() as conn:
        return list(conn.execute(select(table)).all())


def _set(book: Pipeline, table: Any, key: str, **values: Any) -> None:
    with book.c.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == key).values(**values))


def _at_first_retry(book: Pipeline) -> datetime:
    due = max(book.row(invoices, f"in_{cid}")["next_attempt_at"] for cid in CUSTOMERS)
    book.clock.set(due)
    return book.clock.now()


def test_apply_answers_equals_applying_each_answer_in_turn(
    twins: tuple[Pipeline, Pipeline],
) -> None:
    for book in twins:  # both books have the same pending attempts
        now = _at_first_retry(book)
        orders = [
            ChargeOrder(f"in_{cid}", Initiator.merchant, "scheduled_retry", attempt_no=2)
            for cid in CUSTOMERS
        ]
        charges = prepare(book.c, orders, now)
        assert sorted(ch.key for ch in charges) == [f"inv_in_{cid}_att_2" for cid in CUSTOMERS]
    answers = [
        ("inv_in_cus_1_att_2", ChargeResult("succeeded", charge_id="ch_1")),
        ("inv_in_cus_3_att_2", ChargeResult("succeeded", charge_id="ch_3")),  # written together
        ("inv_in_cus_2_att_2", ChargeResult("declined", decline=SOFT)),
        ("inv_in_cus_4_att_2", ChargeResult("declined", decline=Decline("duplicate_transaction"))),
        ("inv_in_cus_1_att_2", ChargeResult("succeeded", charge_id="ch_1")),  # twice
        ("inv_no_such_att_9", ChargeResult("succeeded", charge_id="ch_9")),
    ]
    batch, each = twins
    with transaction(batch.c.engine) as conn:
        apply_answers(conn, batch.c, answers, batch.clock.now())
    for key, result in answers:
        with transaction(each.c.engine) as conn:
            apply_answers(conn, each.c, [(key, result)], each.clock.now())

    assert snapshot(batch) == snapshot(each)
    # The comparison covers every kind of answer: paid, retry scheduled, left for a look-up.
    assert [batch.row(invoices, f"in_{cid}")["status"] for cid in CUSTOMERS] == [
        "paid",
        "open",
        "paid",
        "open",
    ]
    assert batch.row(invoices, "in_cus_2")["next_attempt_at"] > batch.clock.now()
    statuses = {
        r.idempotency_key: r.status for r in _rows(batch, payment_attempts) if r.attempt_no == 2
    }
    assert statuses["inv_in_cus_4_att_2"] == "unknown"
    assert batch.count(outbound_events, outbound_events.c.type == "invoice.recovered") == 2


def test_settle_equals_settling_each_invoice_in_turn(
    twins: tuple[Pipeline, Pipeline],
) -> None:
    for book in twins:
        _set(book, subscriptions, "sub_cus_3", status="suspended")
        with transaction(book.c.engine) as conn:
            assert settle(conn, book.c, [Payment("in_cus_4", "elsewhere")], START)
        book.advance(timedelta(hours=1))
    items = [
        ("in_cus_1", "retry"),
        ("in_cus_2", "card_update"),
        ("in_cus_3", "retry"),
        ("in_cus_4", "retry"),  # already paid: nothing changes
        ("in_cus_1", "retry"),  # the same invoice again
    ]
    batch, each = twins
    with transaction(batch.c.engine) as conn:
        payments = [Payment(invoice_id, source) for invoice_id, source in items]
        settled = settle(conn, batch.c, payments, batch.clock.now())
    one_by_one = set()
    for invoice_id, source in items:
        with transaction(each.c.engine) as conn:
            if settle(conn, each.c, [Payment(invoice_id, source)], each.clock.now()):
                one_by_one.add(invoice_id)

    assert settled == one_by_one == {"in_cus_1", "in_cus_2", "in_cus_3"}
    assert snapshot(batch) == snapshot(each)
    assert batch.row(subscriptions, "sub_cus_3")["status"] == "active"
    kinds = {r.type for r in _rows(batch, outbound_events)}
    # the first two from the failures that opened the invoices, the others from settling them
    assert kinds == {
        "invoice.payment_failed",
        "subscription.past_due",
        "invoice.recovered",
        "subscription.reactivated",
    }
    assert batch.count(notifications, notifications.c.kind == "payment_recovered") == 4


def test_move_subscriptions_equals_moving_each_in_turn(
    twins: tuple[Pipeline, Pipeline],
) -> None:
    for book in twins:
        _set(book, subscriptions, "sub_cus_3", status="suspended")
        _set(book, subscriptions, "sub_cus_4", status="cancelled")
    batch, each = twins
    ids = [f"sub_{cid}" for cid in CUSTOMERS]
    now = batch.clock.now()
    subs = [batch.row(subscriptions, i) for i in ids]
    with transaction(batch.c.engine) as conn:
        moved = move_subscriptions(
            conn, subs, SubscriptionStatus.suspended, now, reason="final_notice_passed"
        )
    one_by_one = set()
    for sub_id in ids:
        with transaction(each.c.engine) as conn:
            sub = conn.execute(select(subscriptions).where(subscriptions.c.id == sub_id))
            row = sub.mappings().one()
            if move_subscription(
                conn, row, SubscriptionStatus.suspended, now, reason="final_notice_passed"
            ):
                one_by_one.add(sub_id)

    assert moved == one_by_one == {"sub_cus_1", "sub_cus_2"}  # suspended stays, cancelled is final
    assert snapshot(batch) == snapshot(each)
    assert batch.count(outbound_events, outbound_events.c.type == "subscription.suspended") == 2


def test_queue_invoice_emails_equals_queueing_each_in_turn(
    twins: tuple[Pipeline, Pipeline],
) -> None:
    for book in twins:
        _set(book, invoices, "in_cus_4", next_attempt_at=None)
        book.advance(timedelta(days=3))
    ids = ["in_cus_1", "in_cus_2", "in_cus_3", "in_cus_4", "in_cus_2"]  # one asked for twice
    batch, each = twins
    with transaction(batch.c.engine) as conn:
        cases = load_cases(conn, ids)
        queued = queue_invoice_emails(
            conn, batch.c, "final_notice", [cases[i] for i in ids], batch.clock.now(),
            dedup_suffix="s3",
        )  # fmt: skip
    one_by_one = []
    for invoice_id in ids:
        with transaction(each.c.engine) as conn:
            case = load_case(conn, invoice_id)
            one_by_one += queue_invoice_emails(
                conn, each.c, "final_notice", [case], each.clock.now(), dedup_suffix="s3"
            )

    assert len(queued) == len(one_by_one) == 4
    assert snapshot(batch) == snapshot(each)
    assert batch.count(notifications, notifications.c.kind == "final_notice") == 4
