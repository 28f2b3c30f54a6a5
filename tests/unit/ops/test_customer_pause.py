"""A customer's pause: none of its invoices is charged or reminded, new ones included; the
charge compare-and-set honours it under a concurrent claim (PostgreSQL, real threads)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from dunning.model import Initiator, InvoiceStatus
from dunning.services.charging import ChargeOrder, charge
from dunning.services.customer_pause import pause_customer, resume_customer
from dunning.store.engine import make_engine
from dunning.store.invoices import claim_charges
from dunning.store.tables import audit_log, customers, payment_attempts
from dunning.store.uow import transaction
from dunning.web.app import create_app
from schedules.producers import due_retries, due_steps
from tests.conftest import _truncate
from tests.unit.ops.conftest import Book, TestClient, make_book
from tests.unit.ops.test_web_ops import AUTH


@pytest.fixture
def client(any_book: Book) -> Iterator[TestClient]:
    with TestClient(create_app(any_book.c), base_url="http://testserver") as c:
        yield c


def due_retry(book: Book, invoice_id: str) -> int:
    """Make the invoice's scheduled retry due now; return the attempt it is for."""
    row = book.invoice_row(invoice_id)
    book.advance(row["next_attempt_at"] - book.now + timedelta(minutes=1))
    return int(row["attempt_count"]) + 1


def attempts_of(book: Book, invoice_id: str) -> int:
    return book.count(payment_attempts, payment_attempts.c.invoice_id == invoice_id)


def test_pause_from_the_invoice_page(any_book: Book, client: TestClient) -> None:
    any_book.add_customer("a")
    any_book.fail("a", "in_a1")
    any_book.fail("a", "in_a2")
    client.get("/ops/invoices/in_a1", headers=AUTH)
    csrf = client.cookies.get("dunning_ops_csrf")
    response = client.post(
        "/ops/customers/a/pause-customer",
        headers=AUTH,
        data={"csrf": csrf, "reason": "disputes the plan change", "invoice": "in_a1"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/ops/invoices/in_a1?done=pause-customer"
    assert any_book.row(customers, "a")["dunning_paused"] is True
    audits = any_book.rows(audit_log, audit_log.c.kind == "operator_pause_customer")
    assert sorted(a["invoice_id"] for a in audits) == ["in_a1", "in_a2"]
    assert {a["actor"] for a in audits} == {"ops"}
    page = client.get(response.headers["location"], headers=AUTH).text
    assert "customer paused" in page
    assert ">Resume customer</button>" in page
    state = client.get("/ops/api/customers/a", headers=AUTH).json()
    assert state["paused"] is True
    assert state["next_retry_at"] is None
    assert all(i["paused"] for i in state["invoices"])
    # without the token, nothing: the customer stays paused
    refused = client.post(
        "/ops/customers/a/resume-customer", headers=AUTH, data={"reason": "x", "invoice": "in_a1"}
    )
    assert refused.status_code == 403
    assert any_book.row(customers, "a")["dunning_paused"] is True
    again = client.post(
        "/ops/customers/a/pause-customer",
        headers=AUTH,
        data={"csrf": client.cookies.get("dunning_ops_csrf"), "reason": "x", "invoice": "in_a1"},
    )
    assert again.status_code == 409
    assert "already paused" in again.text
    assert any_book.count(audit_log, audit_log.c.kind == "operator_pause_customer") == 2


def test_a_paused_customer_is_not_charged_by_the_retry_path(any_book: Book) -> None:
    any_book.add_customer("a")
    any_book.fail("a")
    pause_customer(any_book.c, "a", any_book.now, reason="on hold", by="ops")
    any_book.fail("a", "in_a_new")  # opened while paused: held as well
    attempt = due_retry(any_book, "in_a")
    order = ChargeOrder("in_a", Initiator.merchant, "scheduled_retry", attempt_no=attempt)
    assert charge(any_book.c, [order], any_book.now) == {"in_a": "paused"}
    assert attempts_of(any_book, "in_a") == 1
    # the compare-and-set itself refuses, whatever read the invoice before
    for invoice_id in ("in_a", "in_a_new"):
        count = int(any_book.invoice_row(invoice_id)["attempt_count"])
        with transaction(any_book.c.engine) as conn:
            taken = claim_charges(
                conn, [(invoice_id, count)], statuses={InvoiceStatus.open}, now=any_book.now
            )
        assert taken == set()
    # and the producers enqueue neither retries nor steps
    any_book.advance(timedelta(days=30))
    assert due_retries(any_book.c, any_book.now) == 0
    assert due_steps(any_book.c, any_book.now) == 0
    assert any_book.dispatcher.sent.get("retry_charges", []) == []
    resume_customer(any_book.c, "a", any_book.now, reason="sorted out", by="ops")
    assert due_retries(any_book.c, any_book.now) == 2
    assert due_steps(any_book.c, any_book.now) == 2


def _claim_in_thread(url: str, tmp_path: Path, out: dict[str, object]) -> None:
    for book in make_book(url, tmp_path / "claim"):
        with transaction(book.c.engine) as conn:
            out["taken"] = claim_charges(
                conn, [("in_a", 1)], statuses={InvoiceStatus.open}, now=book.now
            )
        out["committed"] = time.monotonic()


def _pause_in_thread(url: str, tmp_path: Path, out: dict[str, object]) -> None:
    for book in make_book(url, tmp_path / "pause"):
        pause_customer(book.c, "a", book.now, reason="race", by="ops")
        out["paused"] = time.monotonic()


def _waiting(book: Book, at_least: int) -> bool:
    """Whether ``at_least`` other sessions of this database wait on a lock."""
    deadline = time.monotonic() + 60
    with book.c.engine.connect() as conn:
        while time.monotonic() < deadline:
            n = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            conn.rollback()  # the activity view is a snapshot for the whole transaction
            if n >= at_least:
                return True
            time.sleep(0.02)
    return False


def test_a_pause_racing_a_claim_is_never_overtaken(pg_url: str, tmp_path: Path) -> None:
    """A claim that read its snapshot before the pause must not take the invoice after the
    pause has returned (before: the re-check of the invoice row read the customer as it was,
    and the pause returned while the claim waited)."""
    engine = make_engine(pg_url)
    _truncate(engine)
    engine.dispose()
    for book in make_book(pg_url, tmp_path):
        book.add_customer("a")
        book.fail("a")
        out: dict[str, object] = {}
        with book.c.engine.connect() as holder:
            tx = holder.begin()  # another writer holds the invoice row
            holder.execute(text("SELECT id FROM invoices WHERE id = 'in_a' FOR UPDATE"))
            claim = threading.Thread(target=_claim_in_thread, args=(pg_url, tmp_path, out))
            claim.start()
            assert _waiting(book, 1), "the claim did not wait for the invoice row"
            pause = threading.Thread(target=_pause_in_thread, args=(pg_url, tmp_path, out))
            pause.start()
            pause.join(timeout=1.0)  # returns at once unless it waits for the claim
            tx.commit()
        claim.join(timeout=20)
        pause.join(timeout=20)
        assert "paused" in out
        assert "committed" in out
        if out["taken"]:
            assert out["committed"] <= out["paused"], "a charge was taken after the pause"  # type: ignore[operator]
        with book.c.engine.connect() as conn:
            held = conn.execute(select(customers.c.dunning_paused)).scalar_one()
        assert held is True
