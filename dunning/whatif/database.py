"""The book in the database: open invoices, and invoices that failed recently whatever became
of them, each with its first failed charge. Read only, a few set-based statements per chunk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, or_, select

from dunning.policy.types import Decline
from dunning.store.tables import (
    customers,
    invoices,
    payment_attempts,
    payment_methods,
    subscriptions,
)
from dunning.whatif.book import NETWORKS, Book, Card, Customer, Failure, Plan, make_case

CHUNK = 5000


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def _rows(conn: Connection, column: Any, ids: Sequence[str], *extra: Any) -> list[Any]:
    out: list[Any] = []
    for chunk in _chunks(ids):
        out += conn.execute(select(column.table).where(column.in_(chunk), *extra)).mappings().all()
    return out


def _first_attempts(conn: Connection, invoice_ids: Sequence[str]) -> dict[str, Any]:
    rows = _rows(
        conn, payment_attempts.c.invoice_id, invoice_ids, payment_attempts.c.attempt_no == 1
    )
    return {r["invoice_id"]: r for r in rows}


def _card(r: Any) -> Card:
    network = r["network"] if r["network"] in NETWORKS else "unknown"
    return Card(r["id"], network, r["last4"], r["exp_month"], r["exp_year"])


def read_database(engine: Engine, *, now: datetime, since: timedelta) -> Book:
    """Every open invoice with a failure, and every invoice first failing after
    ``now - since``; their customers, cards and subscriptions."""
    book = Book(source=f"database {engine.url.render_as_string(hide_password=True)}")
    with engine.connect() as conn:
        found = (
            conn.execute(
                select(invoices)
                .where(
                    invoices.c.first_failed_at.is_not(None),
                    or_(invoices.c.status == "open", invoices.c.first_failed_at >= now - since),
                )
                .order_by(invoices.c.first_failed_at, invoices.c.id)
            )
            .mappings()
            .all()
        )
        ids = [r["id"] for r in found]
        firsts = _first_attempts(conn, ids)
        owners = sorted({r["customer_id"] for r in found})
        custs = {r["id"]: r for r in _rows(conn, customers.c.id, owners)}
        cards: dict[str, list[Any]] = {}
        for r in _rows(conn, payment_methods.c.customer_id, owners):
            cards.setdefault(r["customer_id"], []).append(r)
        plans: dict[str, list[Any]] = {}
        for r in _rows(conn, subscriptions.c.customer_id, owners):
            plans.setdefault(r["customer_id"], []).append(r)
    grouped: dict[str, list[Any]] = {}
    for inv in found:
        grouped.setdefault(inv["customer_id"], []).append(inv)
    for cid, invs in grouped.items():
        _add_customer(book, custs[cid], cards.get(cid, []), plans.get(cid, []), invs, firsts)
    return book


def _add_customer(
    book: Book,
    cust: Any,
    card_rows: list[Any],
    plan_rows: list[Any],
    invs: list[Any],
    firsts: dict[str, Any],
) -> None:
    subs = {r["id"]: r for r in plan_rows}
    failed_on = {
        inv["id"]: (firsts[inv["id"]]["payment_method_id"] if inv["id"] in firsts else None)
        or subs[inv["subscription_id"]]["payment_method_id"]
        for inv in invs
    }
    # The cards the customer could still pay with, and every card an invoice failed on.
    keep = {r["id"] for r in card_rows if r["status"] == "active" and r["token"]}
    keep |= {card for card in failed_on.values() if card}
    customer = Customer(
        cust["id"],
        cust["locale"] or "en",
        cust["timezone"] or "UTC",
        tuple(_card(r) for r in card_rows if r["id"] in keep),
        tuple(
            Plan(
                r["id"], r["plan"], r["amount"], r["currency"], r["interval"], r["last_payment_at"]
            )  # fmt: skip
            for r in plan_rows
        ),
    )
    cases = []
    for inv in invs:
        card_id = failed_on[inv["id"]]
        if card_id is None:
            continue  # no card to retry: nothing a policy could change
        first = firsts.get(inv["id"])
        decline = (
            Decline(
                first["decline_code"],
                first["network_code"],
                first["advice_code"],
                first["network_advice_code"],
            )  # fmt: skip
            if first is not None and first["decline_code"]
            else Decline("generic_decline")
        )
        failure = Failure(inv["id"], inv["subscription_id"], card_id, inv["amount"],
                          inv["currency"], inv["first_failed_at"], decline)  # fmt: skip
        cases.append(make_case(customer, failure))
    book.add(customer, cases)
