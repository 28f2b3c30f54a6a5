"""``dunning sync stripe`` against the Stripe double over real HTTP, into PostgreSQL.

Several pages of customers, default cards, subscriptions and open invoices; a sync that stops
half-way and continues where it stopped, without duplicates; a rerun that changes nothing; a
change in Stripe that the next run brings in.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from config.settings import load_settings
from dunning.bootstrap import bootstrap
from dunning.cli.main import main
from dunning.clock import VirtualClock
from dunning.errors import GatewayUnavailable
from dunning.gateways.stripe_read import StripeReader
from dunning.imports.stripe_sync import SyncReport, sync_stripe
from dunning.mail.render import LOCALES
from dunning.store.tables import (
    audit_log,
    customers,
    invoices,
    payment_attempts,
    payment_methods,
    subscriptions,
    sync_cursors,
)
from tests.stripe_account import StripeAccountDouble
from tests.stripe_double import serve

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FINALIZED = int((NOW - timedelta(days=2)).timestamp())  # the invoices' first failed charge
N = 230  # customers: three pages of 100, five of 50
TABLES = (customers, payment_methods, subscriptions, invoices)


def account(n: int = N) -> StripeAccountDouble:
    """``n`` customers; every third prefers Danish, every fifth has a yearly plan, every
    seventh has an open invoice after a failed charge, every eleventh one not charged yet."""
    d = StripeAccountDouble()
    for i in range(n):
        cus = f"cus_{i:04d}"
        locales = [["da-DK", "en"], ["it-IT", "da"], ["it"]][i % 3]
        d.add_customer(cus, email=f"c{i}@example.com", name=f"Customer {i}",
                       preferred_locales=locales, address={"country": "DK"} if i % 2 else None,
                       metadata={"timezone": "America/New_York"} if i % 4 == 0 else {})  # fmt: skip
        d.add_card(f"pm_{i:04d}", cus, brand="mastercard" if i % 2 else "visa", last4=f"{i:04d}")
        yearly = i % 5 == 0
        d.add_subscription(f"sub_{i:04d}", cus, price="price_pro_year" if yearly else "price_pro",
                           amount=99000 if yearly else 9900, quantity=2 if i % 6 == 0 else 1,
                           interval="year" if yearly else "month")  # fmt: skip
        if i % 7 == 0:
            d.add_open_invoice(f"in_{i:04d}", f"sub_{i:04d}", attempts=2, finalized_at=FINALIZED)
        elif i % 11 == 0:
            d.add_open_invoice(f"in_{i:04d}", f"sub_{i:04d}", attempts=0)
    return d


@pytest.fixture
def double() -> StripeAccountDouble:
    return account()


@pytest.fixture
def reader(double: StripeAccountDouble) -> Iterator[StripeReader]:
    with serve(double) as base, StripeReader(double.api_key, api_base=base, timeout_s=5) as r:
        yield r


def run(engine: Engine, reader: StripeReader, **kw: Any) -> SyncReport:
    kw.setdefault("limit", 50)
    now = kw.pop("now", NOW)
    url = engine.url.render_as_string(hide_password=False)
    settings = load_settings(database_url=url, outbox_dir=Path(tempfile.mkdtemp()))
    pipeline = bootstrap(settings, clock=VirtualClock(now), engine=engine)
    return sync_stripe(pipeline, reader, now=now, locales=LOCALES, **kw)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES}


def row(engine: Engine, table: Any, key: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(table).where(table.c.id == key)).mappings().one()


def stamps(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return [conn.execute(select(t.c.id, t.c.updated_at).order_by(t.c.id)).all() for t in TABLES]


EXPECTED = {"customers": N, "payment_methods": N, "subscriptions": N,
            "invoices": len(range(0, N, 7))}  # fmt: skip


def test_a_sync_stores_every_page_with_real_plans_locales_and_cards(
    pg_engine: Engine, reader: StripeReader, double: StripeAccountDouble
) -> None:
    report = run(pg_engine, reader)

    assert counts(pg_engine) == EXPECTED
    assert report.kinds["customers"].pages == 5
    assert report.kinds["customers"].inserted == N
    pages = double.list_calls("/v1/customers")
    assert [p.get("starting_after") for p in pages] == [None] + [
        f"cus_{N - 50 - 50 * k:04d}" for k in range(4)
    ]  # newest first, each page after the last id of the one before
    assert row(pg_engine, customers, "cus_0003")["locale"] == "da-DK"
    assert row(pg_engine, customers, "cus_0001")["locale"] == "da"  # it-IT has no templates
    assert row(pg_engine, customers, "cus_0002")["locale"] == "en"
    assert row(pg_engine, customers, "cus_0004")["timezone"] == "America/New_York"  # metadata
    assert row(pg_engine, customers, "cus_0001")["timezone"] == "Europe/Copenhagen"  # country
    assert row(pg_engine, customers, "cus_0002")["timezone"] == "UTC"  # nothing to go by
    card = row(pg_engine, payment_methods, "pm_0013")
    assert (card["customer_id"], card["token"], card["gateway"], card["network"]) == (
        "cus_0013", "pm_0013", "stripe", "mastercard")  # fmt: skip
    assert (card["last4"], card["exp_month"], card["exp_year"], card["is_default"]) == (
        "0013", 12, 2030, True)  # fmt: skip
    yearly = row(pg_engine, subscriptions, "sub_0005")
    assert (yearly["plan"], yearly["interval"], yearly["amount"], yearly["currency"]) == (
        "price_pro_year", "year", 99000, "EUR")  # fmt: skip
    assert yearly["payment_method_id"] == "pm_0005"
    assert yearly["status"] == "active"
    assert row(pg_engine, subscriptions, "sub_0006")["amount"] == 2 * 9900  # quantity 2
    assert row(pg_engine, customers, "cus_0013")["stripe_customer_id"] == "cus_0013"
    invoice = row(pg_engine, invoices, "in_0007")
    assert invoice["stripe_invoice_id"] == "in_0007"  # paid through the Stripe invoice
    assert (invoice["status"], invoice["attempt_count"], invoice["amount"]) == ("open", 2, 9900)
    assert invoice["next_attempt_at"] > NOW  # the policy's next retry, after Stripe's two
    with pg_engine.connect() as conn:
        tried = conn.scalars(
            select(payment_attempts.c.reason).where(payment_attempts.c.invoice_id == "in_0007")
        ).all()
    assert tried == ["imported", "imported"]
    assert row(pg_engine, subscriptions, "sub_0007")["status"] == "past_due"
    assert report.kinds["invoices"].reasons["not charged yet"] == len(
        [i for i in range(N) if i % 11 == 0 and i % 7]
    )
    with pg_engine.connect() as conn:
        audited = conn.scalar(select(func.count()).where(audit_log.c.kind == "invoice_imported"))
    assert audited == EXPECTED["invoices"]


def test_a_customer_the_book_maps_is_updated_under_our_id(
    pg_engine: Engine, reader: StripeReader
) -> None:
    with pg_engine.begin() as conn:
        conn.execute(
            insert(customers).values(
                id="42", email="old@example.com", billing_emails=[], stripe_customer_id="cus_0007",
                created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip

    run(pg_engine, reader)

    assert counts(pg_engine)["customers"] == N  # cus_0007 is customer 42, not a second one
    ours = row(pg_engine, customers, "42")
    assert (ours["email"], ours["stripe_customer_id"]) == ("c7@example.com", "cus_0007")
    assert row(pg_engine, subscriptions, "sub_0007")["customer_id"] == "42"
    assert row(pg_engine, payment_methods, "pm_0007")["customer_id"] == "42"
    assert row(pg_engine, invoices, "in_0007")["customer_id"] == "42"


def test_a_rerun_changes_nothing(pg_engine: Engine, reader: StripeReader) -> None:
    run(pg_engine, reader)
    before = stamps(pg_engine)

    again = run(pg_engine, reader, now=NOW + timedelta(hours=1))

    assert not again.resumed
    assert stamps(pg_engine) == before  # no row written: updated_at did not move
    for kind in ("customers", "subscriptions", "invoices"):
        r = again.kinds[kind]
        assert (r.inserted, r.updated) == (0, 0), kind
    assert again.kinds["customers"].unchanged == N


def test_a_sync_that_stops_half_way_continues_there_without_duplicates(
    pg_engine: Engine, reader: StripeReader, double: StripeAccountDouble
) -> None:
    # Customers in 5 pages, subscriptions in 5: the 8th request (subscriptions page 3) fails.
    double.fail_next(*([None] * 7), "500")  # type: ignore[list-item]
    with pytest.raises(GatewayUnavailable):
        run(pg_engine, reader)
    with pg_engine.connect() as conn:
        cursor = dict(conn.execute(select(sync_cursors.c.kind, sync_cursors.c.after_id)).all())
    assert counts(pg_engine)["customers"] == N
    assert counts(pg_engine)["subscriptions"] == 100  # two pages stored, the cursor after them
    assert cursor["subscriptions"] == f"sub_{N - 100:04d}"
    seen_before = len(double.seen)

    resumed = run(pg_engine, reader)

    assert resumed.resumed
    assert counts(pg_engine) == EXPECTED
    assert resumed.kinds["customers"].read == 0  # finished kinds are not read again
    assert resumed.kinds["subscriptions"].inserted == N - 100
    calls = [s.query for s in double.seen[seen_before:] if s.path == "/v1/subscriptions"]
    assert calls[0]["starting_after"] == f"sub_{N - 100:04d}"
    with pg_engine.connect() as conn:
        audited = conn.scalar(select(func.count()).where(audit_log.c.kind == "invoice_imported"))
    assert audited == EXPECTED["invoices"]


def test_changes_in_stripe_reach_the_book_on_the_next_run(
    pg_engine: Engine, reader: StripeReader, double: StripeAccountDouble
) -> None:
    run(pg_engine, reader)
    double.customers["cus_0002"].update(email="new@example.com", preferred_locales=["da"])
    double.add_card("pm_new", "cus_0002", brand="amex", last4="0005", exp=(1, 2031))
    item = double.subscriptions["sub_0002"]["items"]["data"][0]
    item["price"].update(id="price_pro_year", unit_amount=99000, recurring={"interval": "year"})
    double.subscriptions["sub_0003"]["status"] = "canceled"

    again = run(pg_engine, reader, now=NOW + timedelta(hours=1))

    cus = row(pg_engine, customers, "cus_0002")
    assert (cus["email"], cus["locale"], cus["card_generation"]) == ("new@example.com", "da", 1)
    assert row(pg_engine, payment_methods, "pm_new")["is_default"] is True
    assert row(pg_engine, payment_methods, "pm_0002")["is_default"] is False
    sub = row(pg_engine, subscriptions, "sub_0002")
    assert (sub["plan"], sub["interval"], sub["amount"]) == ("price_pro_year", "year", 99000)
    assert sub["payment_method_id"] == "pm_new"
    assert row(pg_engine, subscriptions, "sub_0003")["status"] == "cancelled"
    assert again.kinds["customers"].updated == 1
    assert again.kinds["subscriptions"].updated == 2


def test_cli_json_summary(
    pg_engine: Engine,
    module_pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    double = account(12)
    double.add_customer("cus_noemail", email=None)
    with serve(double) as base:
        monkeypatch.setenv("DUNNING_DATABASE_URL", module_pg_url)
        monkeypatch.setenv("DUNNING_STRIPE__API_KEY", double.api_key)
        monkeypatch.setenv("DUNNING_STRIPE__API_BASE", base)
        assert main(["sync", "stripe", "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        monkeypatch.setenv("DUNNING_STRIPE__API_KEY", "sk_test_wrong")
        assert main(["sync", "stripe"]) == 2
        assert "DUNNING_STRIPE__API_KEY" in capsys.readouterr().err
    assert summary["customers"]["inserted"] == 12
    assert summary["customers"]["skipped_because"] == {"no email address": 1}
    assert summary["subscriptions"]["inserted"] == 12
    assert summary["invoices"]["inserted"] == 2
    assert summary["resumed"] is False
