"""What the operators' read-only views need of one customer beyond its rows by id."""

from __future__ import annotations

from sqlalchemy import Connection, RowMapping, select

from dunning.store.tables import subscriptions


def subscriptions_of(conn: Connection, customer_id: str) -> list[RowMapping]:
    """The customer's subscriptions, oldest first."""
    return list(
        conn.execute(
            select(subscriptions)
            .where(subscriptions.c.customer_id == customer_id)
            .order_by(subscriptions.c.created_at, subscriptions.c.id)
        ).mappings()
    )
