"""Invoices in the store: the compare-and-set that takes a charge, and the writes of the retry
schedule (next attempt, stop)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, not_, select, tuple_, update

from dunning.model import OWED, UNRESOLVED, InvoiceStatus, SubscriptionStatus
from dunning.store.tables import customers, invoices, payment_attempts, subscriptions


def claim_charges(
    conn: Connection,
    claims: Sequence[tuple[str, int]],
    *,
    statuses: Collection[InvoiceStatus],
    now: datetime,
) -> set[str]:
    """Take the next attempt of each ``(invoice id, attempt count)``: the one compare-and-set
    every charge goes through, whoever starts it.

    An invoice is taken only while it is still at that attempt count, in one of ``statuses``
    (owed), not paused, of a customer not paused, of a subscription that is not cancelled, and
    with no other charge in flight; its attempt count goes up by one and its scheduled retry is
    cleared. Returns the ids taken. On PostgreSQL a concurrent writer of the row (a payment
    recorded, a pause, another claim) is waited for and the conditions checked again against
    what it wrote; a customer's pause is waited for by :func:`_share_customers`.
    """
    if not claims:
        return set()
    _share_customers(conn, [invoice_id for invoice_id, _ in claims])
    held = exists().where(customers.c.id == invoices.c.customer_id, customers.c.dunning_paused)
    busy = exists().where(
        payment_attempts.c.invoice_id == invoices.c.id,
        payment_attempts.c.status.in_([s.value for s in UNRESOLVED]),
    )
    live = exists().where(
        subscriptions.c.id == invoices.c.subscription_id,
        subscriptions.c.status != SubscriptionStatus.cancelled.value,
    )
    return set(
        conn.execute(
            update(invoices)
            .where(
                tuple_(invoices.c.id, invoices.c.attempt_count).in_(list(claims)),
                invoices.c.status.in_([s.value for s in statuses]),
                invoices.c.paused.is_(False),
                not_(held),
                not_(busy),
                live,
            )
            .values(
                attempt_count=invoices.c.attempt_count + 1,
                next_attempt_at=None,
                retry_claimed_until=None,
                updated_at=now,
            )
            .returning(invoices.c.id)
        ).scalars()
    )


def _share_customers(conn: Connection, invoice_ids: Sequence[str]) -> None:
    """Key-share lock the customers of these invoices, in a statement of its own (PostgreSQL;
    SQLite serialises writes). A pause locks the customer's row for update, so it waits for
    this lock, or this waits for the pause to commit and the claim's statement then reads it.
    Plain updates of a customer row (a payment's time) do not wait for it."""
    if conn.dialect.name != "postgresql":
        return
    owners = select(invoices.c.customer_id).where(invoices.c.id.in_(list(invoice_ids)))
    conn.execute(
        select(customers.c.id)
        .where(customers.c.id.in_(owners))
        .order_by(customers.c.id)
        .with_for_update(key_share=True, read=True)
    ).all()


def schedule_retry(
    conn: Connection,
    invoice_id: str,
    *,
    at: datetime,
    reason: str,
    now: datetime,
    card_id: str | None = None,
    **values: Any,
) -> None:
    """Set the next merchant retry of an open invoice (a later one replaces it)."""
    conn.execute(
        update(invoices)
        .where(invoices.c.id == invoice_id)
        .values(
            next_attempt_at=at,
            next_attempt_reason=reason,
            retry_payment_method_id=card_id,
            retry_claimed_until=None,
            updated_at=now,
            **values,
        )
    )


def stop_retries(
    conn: Connection, invoice_id: str, *, reason: str, now: datetime, **values: Any
) -> None:
    """No more merchant retries for the invoice, with the reason why."""
    conn.execute(
        update(invoices)
        .where(invoices.c.id == invoice_id)
        .values(
            next_attempt_at=None,
            retry_claimed_until=None,
            stop_reason=reason,
            updated_at=now,
            **values,
        )
    )


def set_values(conn: Connection, invoice_id: str, *, now: datetime, **values: Any) -> None:
    """Write columns of one invoice that are not its status (see :mod:`dunning.store.status`)."""
    conn.execute(
        update(invoices).where(invoices.c.id == invoice_id).values(updated_at=now, **values)
    )


def write_many(conn: Connection, rows: Sequence[Mapping[str, Any]], *, now: datetime) -> None:
    """:func:`set_values` of many invoices: each row is an ``id`` and the columns to write;
    rows naming the same columns go in one statement, executed once per row (pipelined)."""
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for names, group in groups.items():
        columns = [name for name in names if name != "id"]
        stmt = (
            update(invoices)
            .where(invoices.c.id == bindparam("b_id", type_=invoices.c.id.type))
            .values(
                updated_at=now,
                **{name: bindparam(f"b_{name}", type_=invoices.c[name].type) for name in columns},
            )
        )
        conn.execute(stmt, [{f"b_{name}": value for name, value in r.items()} for r in group])


def owed_by(conn: Connection, customer_id: str) -> list[str]:
    """The ids of what the customer owes, oldest first."""
    return list(
        conn.execute(
            select(invoices.c.id)
            .where(
                invoices.c.customer_id == customer_id,
                invoices.c.status.in_([s.value for s in OWED]),
            )
            .order_by(invoices.c.created_at, invoices.c.id)
        ).scalars()
    )


def open_of_subscription(conn: Connection, subscription_id: str) -> list[tuple[str, str]]:
    """``(id, status)`` of the subscription's open invoices."""
    rows = conn.execute(
        select(invoices.c.id, invoices.c.status).where(
            and_(
                invoices.c.subscription_id == subscription_id,
                invoices.c.status == InvoiceStatus.open.value,
            )
        )
    )
    return [(i, s) for i, s in rows]
