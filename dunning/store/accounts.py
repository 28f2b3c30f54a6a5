"""What the card-update page reads about a customer: live subscriptions, the card on file and
what is owed per currency."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, RowMapping, func, select

from dunning.model import OWED, CardStatus, SubscriptionStatus
from dunning.store.tables import invoices, payment_methods, subscriptions


def live_subscriptions(conn: Connection, customer_id: str) -> Sequence[RowMapping]:
    """The customer's subscriptions that are not cancelled."""
    return list(
        conn.execute(
            select(subscriptions).where(
                subscriptions.c.customer_id == customer_id,
                subscriptions.c.status != SubscriptionStatus.cancelled.value,
            )
        ).mappings()
    )


def default_card(conn: Connection, customer_id: str) -> RowMapping | None:
    """The customer's active default card, if any."""
    return (
        conn.execute(
            select(payment_methods).where(
                payment_methods.c.customer_id == customer_id,
                payment_methods.c.status == CardStatus.active.value,
                payment_methods.c.is_default.is_(True),
            )
        )
        .mappings()
        .first()
    )


def owed_by_currency(conn: Connection, customer_id: str) -> tuple[tuple[int, str], ...]:
    """``(amount in minor units, currency)`` the customer owes, one per currency, above zero."""
    rows = conn.execute(
        select(invoices.c.currency, func.sum(invoices.c.amount))
        .where(
            invoices.c.customer_id == customer_id,
            invoices.c.status.in_([s.value for s in OWED]),
        )
        .group_by(invoices.c.currency)
        .order_by(invoices.c.currency)
    )
    return tuple((int(amount), currency) for currency, amount in rows if int(amount or 0) > 0)
