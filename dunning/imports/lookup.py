"""Read what of a chunk is already stored, in one statement (two when customers exist).

On a first import almost nothing exists, and probing the index for every card, subscription and
invoice id costs the database more than inserting them. So by default only the customers are
looked up, then the default cards, cards, subscriptions and invoices of customers that exist;
the writer checks that every child row of a new customer was really inserted (on PostgreSQL,
where it COPYs them, the COPY fails instead) and, if one was stored under another customer,
redoes the chunk with ``full=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, literal, null, select, union_all

from dunning.imports.lines import CustomerLine
from dunning.imports.state import Existing
from dunning.imports.upsert import id_in, id_table
from dunning.store.tables import customers, invoices, payment_methods, subscriptions


def lookup(conn: Connection, lines: Sequence[CustomerLine], *, full: bool = False) -> Existing:
    """The stored customers of ``lines``, their default cards, and the children as above."""
    found = _Found()
    found.read(conn, _customer_parts(conn, lines) + (_child_parts(conn, lines) if full else []))
    stored = [c for c in lines if c.id in found.customers]
    if stored and not full:
        found.read(conn, _child_parts(conn, stored))
    return Existing(
        frozenset(found.customers), found.cards, found.subscriptions, found.invoices, found.defaults
    )


class _Found:
    def __init__(self) -> None:
        self.customers: set[str] = set()
        self.defaults: dict[str, str] = {}
        self.cards: dict[str, tuple[str, str]] = {}
        self.subscriptions: dict[str, tuple[str, str | None]] = {}
        self.invoices: dict[str, str] = {}

    def read(self, conn: Connection, parts: list[Any]) -> None:
        for kind, key, owner, extra in conn.execute(union_all(*parts)).all():
            if kind == "customer":
                self.customers.add(key)
            elif kind == "default":
                self.defaults[owner] = key
            elif kind == "card":
                self.cards[key] = (owner, extra)
            elif kind == "subscription":
                self.subscriptions[key] = (owner, extra)
            else:
                self.invoices[key] = owner


def _customer_parts(conn: Connection, lines: Sequence[CustomerLine]) -> list[Any]:
    cc = customers.c
    ids = [c.id for c in lines]
    return [select(literal("customer"), cc.id, cc.id, null()).where(id_in(conn, cc.id, ids))]


def _child_parts(conn: Connection, lines: Sequence[CustomerLine]) -> list[Any]:
    pm, sc, ic = payment_methods.c, subscriptions.c, invoices.c
    owners = id_table(conn, [c.id for c in lines])
    card_ids = [card.id for c in lines for card in c.payment_methods]
    sub_ids = [s.id for c in lines for s in c.subscriptions]
    inv_ids = [inv.id for c in lines for inv in c.invoices]
    parts = [
        select(literal("default"), pm.id, pm.customer_id, null())
        .join(owners, pm.customer_id == owners.c.value)
        .where(pm.is_default, pm.status == "active")
    ]
    if card_ids:
        parts.append(
            select(literal("card"), pm.id, pm.customer_id, pm.status).where(
                id_in(conn, pm.id, card_ids)
            )
        )
    if sub_ids:
        parts.append(
            select(literal("subscription"), sc.id, sc.customer_id, sc.payment_method_id).where(
                id_in(conn, sc.id, sub_ids)
            )
        )
    if inv_ids:
        parts.append(
            select(literal("invoice"), ic.id, ic.customer_id, null()).where(
                id_in(conn, ic.id, inv_ids)
            )
        )
    return parts
