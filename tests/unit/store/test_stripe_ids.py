"""Stripe's ids are mapped to ours (``stripe_customer_id``, ``stripe_invoice_id``), not assumed
equal; rows that came from Stripe before the mapping keep their Stripe ids as such."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError

from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from dunning.store.tables import customers, invoices
from tests.services import scratch_pg_database

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database, not migrated yet."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
        yield engine
        engine.dispose()
        return
    with scratch_pg_database() as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


def _seed_before_0007(engine: Engine) -> None:
    with engine.begin() as conn:
        for cid in ("cus_FromStripe", "c-42", "cusX"):
            conn.execute(
                text(
                    "INSERT INTO customers (id, email, billing_emails, created_at, updated_at) "
                    "VALUES (:id, 'a@example.com', '[]', :t, :t)"
                ),
                {"id": cid, "t": NOW},
            )
        conn.execute(
            text(
                "INSERT INTO subscriptions (id, customer_id, plan, amount, currency, "
                "created_at, updated_at) VALUES ('sub_1', 'c-42', 'p', 100, 'EUR', :t, :t)"
            ),
            {"t": NOW},
        )
        for iid in ("in_FromStripe", "inv-7"):
            conn.execute(
                text(
                    "INSERT INTO invoices (id, subscription_id, customer_id, amount, currency, "
                    "created_at, updated_at) VALUES (:id, 'sub_1', 'c-42', 100, 'EUR', :t, :t)"
                ),
                {"id": iid, "t": NOW},
            )


def test_upgrade_maps_the_stripe_ids_rows_already_carried(fresh: Engine) -> None:
    upgrade(fresh, "0006")
    _seed_before_0007(fresh)
    upgrade(fresh)
    with fresh.connect() as conn:
        custs = dict(conn.execute(select(customers.c.id, customers.c.stripe_customer_id)).all())
        invs = dict(conn.execute(select(invoices.c.id, invoices.c.stripe_invoice_id)).all())
    assert custs == {"cus_FromStripe": "cus_FromStripe", "c-42": None, "cusX": None}
    assert invs == {"in_FromStripe": "in_FromStripe", "inv-7": None}
    # one of our customers per Stripe customer
    with pytest.raises(IntegrityError), fresh.begin() as conn:
        conn.execute(
            customers.update()
            .where(customers.c.id == "c-42")
            .values(stripe_customer_id="cus_FromStripe")
        )
