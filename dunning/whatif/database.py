"""The book in the database: open invoices, and invoices that failed recently whatever became
of them, each with its first failed charge; and the merchant's retries, for fitting the model.
Read only, a few set-based statements per chunk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, or_, select

from dunning.policy.paydays import country_of
from dunning.policy.timing import zone
from dunning.policy.types import Decline
from dunning.store.tables import (
    customers,
    invoices,
    payment_attempts,
    payment_methods,
    subscriptions,
)
from dunning.whatif.book import NETWORKS, Book, Card, Customer, Failure, Plan, make_case
from dunning.whatif.fit import Observation
from dunning.whatif.model import RetryContext, model_class

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
            )
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
            )
            if first is not None and first["decline_code"]
            else Decline("generic_decline")
        )
        failure = Failure(inv["id"], inv["subscription_id"], card_id, inv["amount"],
                          inv["currency"], inv["first_failed_at"], decline)  # fmt: skip
        cases.append(make_case(customer, failure))
    book.add(customer, cases)


def history(engine: Engine, *, since: datetime) -> list[Observation]:
    """Every merchant retry since ``since`` that got an answer, as a model observation: the
    class of the decline that opened its invoice (or ``other_card`` on another card), the
    hours since that failure, the retries before it, its local time and country."""
    with engine.connect() as conn:
        retries = (
            conn.execute(
                select(payment_attempts)
                .where(
                    payment_attempts.c.attempt_no >= 2,
                    payment_attempts.c.initiator == "merchant",
                    payment_attempts.c.status.in_(["succeeded", "declined"]),
                    payment_attempts.c.created_at >= since,
                )
                .order_by(payment_attempts.c.created_at, payment_attempts.c.id)
            )
            .mappings()
            .all()
        )
        ids = sorted({r["invoice_id"] for r in retries})
        firsts = _first_attempts(conn, ids)
        invs = {r["id"]: r for r in _rows(conn, invoices.c.id, ids)}
        owners = sorted({r["customer_id"] for r in invs.values()})
        zones = {r["id"]: r["timezone"] or "UTC" for r in _rows(conn, customers.c.id, owners)}
    out = []
    for r in retries:
        inv, first = invs.get(r["invoice_id"]), firsts.get(r["invoice_id"])
        if inv is None or first is None or inv["first_failed_at"] is None:
            continue
        out.append(_observation(r, first, inv["first_failed_at"], zones[inv["customer_id"]]))
    return out


def _observation(r: Any, first: Any, failed_at: datetime, timezone: str) -> Observation:
    decline = Decline(first["decline_code"], first["network_code"], first["advice_code"],
                      first["network_advice_code"])  # fmt: skip
    same_card = r["payment_method_id"] == first["payment_method_id"]
    at = r["created_at"]
    ctx = RetryContext(
        decline_class=model_class(decline, first["network"]) if same_card else "other_card",
        hours_since_failure=(at - failed_at).total_seconds() / 3600.0,
        retries_before=max(r["attempt_no"] - 2, 0),
        local=at.astimezone(zone(timezone)).replace(tzinfo=None),
        country=country_of(timezone),
    )
    return Observation(ctx, r["status"] == "succeeded")
