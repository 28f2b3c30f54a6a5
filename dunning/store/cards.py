"""Cards in the store: which of a customer's cards may be charged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, select

from dunning.model import CardStatus
from dunning.store.tables import payment_methods


def usable(card: Mapping[Any, Any] | None) -> bool:
    """Whether a card may be charged: active, with a token, and nothing blocking it."""
    return bool(
        card
        and card["status"] == CardStatus.active
        and card["token"]
        and not card["blocked_reason"]
    )


def usable_cards(conn: Connection, customer_id: str) -> Sequence[RowMapping]:
    """The customer's active cards with a token and nothing blocking them, default first."""
    return usable_cards_of(conn, [customer_id])[customer_id]


def usable_cards_of(
    conn: Connection, customer_ids: Iterable[str]
) -> dict[str, Sequence[RowMapping]]:
    """:func:`usable_cards` of many customers in one statement."""
    wanted = list(dict.fromkeys(customer_ids))
    out: dict[str, list[RowMapping]] = {customer_id: [] for customer_id in wanted}
    if wanted:
        rows = conn.execute(
            select(payment_methods)
            .where(
                payment_methods.c.customer_id.in_(wanted),
                payment_methods.c.status == CardStatus.active.value,
                payment_methods.c.token.is_not(None),
                payment_methods.c.blocked_reason.is_(None),
            )
            .order_by(payment_methods.c.is_default.desc(), payment_methods.c.created_at.desc())
        ).mappings()
        for r in rows:
            out[r["customer_id"]].append(r)
    return dict(out)


def active_cards(conn: Connection, customer_id: str) -> Sequence[RowMapping]:
    """Every active card of the customer, default first."""
    return list(
        conn.execute(
            select(payment_methods)
            .where(
                payment_methods.c.customer_id == customer_id,
                payment_methods.c.status == CardStatus.active.value,
            )
            .order_by(payment_methods.c.is_default.desc(), payment_methods.c.created_at.desc())
        ).mappings()
    )
