"""Reads the services share. Rows come back as read-only mappings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, select

from dunning.errors import NotFound
from dunning.policy.types import AttemptRecord
from dunning.store.tables import (
    customers,
    invoices,
    payment_attempts,
    payment_methods,
    subscriptions,
)


def _one(conn: Connection, table: Any, key: str, *, lock: bool = False) -> RowMapping:
    stmt = select(table).where(table.c.id == key)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFound(f"{table.name} {key!r} does not exist")
    return row


def customer(conn: Connection, key: str) -> RowMapping:
    return _one(conn, customers, key)


def card(conn: Connection, key: str) -> RowMapping:
    return _one(conn, payment_methods, key)


def subscription(conn: Connection, key: str) -> RowMapping:
    return _one(conn, subscriptions, key)


def invoice(conn: Connection, key: str, *, lock: bool = False) -> RowMapping:
    return _one(conn, invoices, key, lock=lock)


def find(conn: Connection, table: Any, key: str) -> RowMapping | None:
    return conn.execute(select(table).where(table.c.id == key)).mappings().first()


def _record(row: RowMapping) -> AttemptRecord:
    return AttemptRecord(
        at=row["created_at"],
        invoice_id=row["invoice_id"],
        payment_method_id=row["payment_method_id"],
        network=row["network"],
        amount=row["amount"],
        initiator=row["initiator"],
        status=row["status"],
        decline_code=row["decline_code"],
        network_code=row["network_code"],
        advice_code=row["advice_code"],
        network_advice_code=row["network_advice_code"],
    )


def invoice_attempts(conn: Connection, invoice_id: str) -> tuple[AttemptRecord, ...]:
    rows = conn.execute(
        select(payment_attempts)
        .where(payment_attempts.c.invoice_id == invoice_id)
        .order_by(payment_attempts.c.attempt_no)
    ).mappings()
    return tuple(_record(r) for r in rows)


def card_attempts(conn: Connection, card_id: str, since: datetime) -> tuple[AttemptRecord, ...]:
    rows = conn.execute(
        select(payment_attempts)
        .where(
            payment_attempts.c.payment_method_id == card_id,
            payment_attempts.c.created_at >= since,
        )
        .order_by(payment_attempts.c.created_at, payment_attempts.c.id)
    ).mappings()
    return tuple(_record(r) for r in rows)


def usable_cards(conn: Connection, customer_id: str) -> Sequence[RowMapping]:
    """The customer's active cards with a token and nothing blocking them, default first."""
    return list(
        conn.execute(
            select(payment_methods)
            .where(
                payment_methods.c.customer_id == customer_id,
                payment_methods.c.status == "active",
                payment_methods.c.token.is_not(None),
                payment_methods.c.blocked_reason.is_(None),
            )
            .order_by(payment_methods.c.is_default.desc(), payment_methods.c.created_at.desc())
        ).mappings()
    )


def active_cards(conn: Connection, customer_id: str) -> Sequence[RowMapping]:
    """Every active card of the customer, default first."""
    return list(
        conn.execute(
            select(payment_methods)
            .where(
                payment_methods.c.customer_id == customer_id,
                payment_methods.c.status == "active",
            )
            .order_by(payment_methods.c.is_default.desc(), payment_methods.c.created_at.desc())
        ).mappings()
    )


def open_invoices(conn: Connection, customer_id: str) -> Sequence[RowMapping]:
    return list(
        conn.execute(
            select(invoices)
            .where(invoices.c.customer_id == customer_id, invoices.c.status == "open")
            .order_by(invoices.c.created_at)
        ).mappings()
    )
