"""The schema makes the invariants impossible to break, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, insert, inspect, select
from sqlalchemy.exc import DataError, IntegrityError

from dunning.store.engine import make_engine
from dunning.store.migrate import is_current, upgrade
from dunning.store.tables import (
    customers,
    invoices,
    metadata,
    notifications,
    payment_attempts,
    payment_methods,
    subscriptions,
    webhook_events,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TS = {"created_at": NOW, "updated_at": NOW}


@pytest.fixture
def engine(db_url: str) -> Engine:
    eng = make_engine(db_url)
    yield eng  # type: ignore[misc]
    eng.dispose()


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(customers).values(id="cus_1", email="a@example.com", **TS))
        conn.execute(
            insert(payment_methods).values(
                id="pm_1",
                customer_id="cus_1",
                gateway="sandbox",
                token="sbx_ok_1",
                network="visa",
                last4="4242",
                exp_month=3,
                exp_year=2030,
                is_default=True,
                **TS,
            )
        )
        conn.execute(
            insert(subscriptions).values(
                id="sub_1",
                customer_id="cus_1",
                plan="pro",
                amount=100,
                currency="EUR",
                payment_method_id="pm_1",
                **TS,
            )
        )
        conn.execute(
            insert(invoices).values(
                id="in_1",
                subscription_id="sub_1",
                customer_id="cus_1",
                amount=100,
                currency="EUR",
                **TS,
            )
        )


def _attempt(key: str, **extra: Any) -> dict[str, Any]:
    row = {
        "idempotency_key": key,
        "invoice_id": "in_1",
        "attempt_no": 1,
        "customer_id": "cus_1",
        "payment_method_id": "pm_1",
        "amount": 100,
        "currency": "EUR",
        "initiator": "merchant",
        "status": "pending",
        "created_at": NOW,
    }
    return row | extra


def test_upgrade_is_current_and_repeatable(engine: Engine) -> None:
    upgrade(engine)
    assert is_current(engine)


def test_idempotency_key_is_unique(engine: Engine) -> None:
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(insert(payment_attempts).values(**_attempt("inv_in_1_att_1")))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(payment_attempts).values(**_attempt("inv_in_1_att_1")))


def test_dedup_key_is_unique(engine: Engine) -> None:
    _seed(engine)
    row = {
        "dedup_key": "payment_failed:in_1",
        "kind": "payment_failed",
        "customer_id": "cus_1",
        "to_addr": "a@example.com",
        "cc": [],
        "locale": "en",
        "context": {},
        "not_before": NOW,
        "message_id": "<x@dunning>",
        "created_at": NOW,
    }
    with engine.begin() as conn:
        conn.execute(insert(notifications).values(**row))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(notifications).values(**row))


def test_webhook_event_is_unique_per_provider(engine: Engine) -> None:
    row = {
        "provider": "stripe",
        "event_id": "evt_1",
        "type": "x",
        "payload": {},
        "received_at": NOW,
    }
    with engine.begin() as conn:
        conn.execute(insert(webhook_events).values(**row))
        conn.execute(insert(webhook_events).values(**(row | {"provider": "quickpay"})))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(webhook_events).values(**row))


def test_one_default_card_per_customer(engine: Engine) -> None:
    _seed(engine)
    card = {
        "id": "pm_2",
        "customer_id": "cus_1",
        "gateway": "sandbox",
        "token": "sbx_ok_2",
        "last4": "4444",
        "exp_month": 1,
        "exp_year": 2031,
        **TS,
    }
    with engine.begin() as conn:  # a second, non-default card is fine
        conn.execute(insert(payment_methods).values(**card, is_default=False))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(payment_methods).values(**(card | {"id": "pm_3"}), is_default=True))


@pytest.mark.parametrize(
    ("column", "value"),
    [("amount", -1), ("currency", "eur"), ("currency", "EURO"), ("initiator", "robot")],
)
def test_attempt_check_constraints(engine: Engine, column: str, value: object) -> None:
    _seed(engine)
    # PostgreSQL refuses a too-long value before the check constraint (DataError).
    with pytest.raises((IntegrityError, DataError)), engine.begin() as conn:
        conn.execute(insert(payment_attempts).values(**_attempt("k", **{column: value})))


def test_negative_invoice_amount_is_refused(engine: Engine) -> None:
    _seed(engine)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert(invoices).values(
                id="in_2",
                subscription_id="sub_1",
                customer_id="cus_1",
                amount=-5,
                currency="EUR",
                **TS,
            )
        )


def test_datetimes_come_back_aware_utc(engine: Engine) -> None:
    _seed(engine)
    with engine.connect() as conn:
        created = conn.execute(select(customers.c.created_at)).scalar_one()
    assert created == NOW
    assert created.tzinfo is not None


def test_no_column_can_hold_a_card_number_or_cvc(engine: Engine) -> None:
    forbidden = ("pan", "card_number", "number", "cvc", "cvv", "cvv2", "security_code")
    insp = inspect(engine)
    for table in metadata.sorted_tables:
        for col in insp.get_columns(table.name):
            assert col["name"] not in forbidden, f"{table.name}.{col['name']}"
