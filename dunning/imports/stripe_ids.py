"""Stripe's ids and the book's: ``customers.stripe_customer_id`` and ``invoices.stripe_invoice_id``.

A Stripe customer the book already maps (a customer of ours whose ``stripe_customer_id`` is
that ``cus_…``) is written under our id; one the book does not know is stored under Stripe's id
and mapped to it. A synced invoice is stored under Stripe's id and mapped to it, so the
pipeline pays it through the Stripe invoice.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select, update

from dunning.imports.upsert import id_in
from dunning.store.tables import customers, invoices


def our_customers(conn: Connection, refs: Sequence[str]) -> dict[str, str]:
    """Stripe customer id -> our customer id, for the ones the book maps."""
    cc = customers.c
    if not refs:
        return {}
    stmt = select(cc.stripe_customer_id, cc.id).where(
        id_in(conn, cc.stripe_customer_id, sorted(set(refs)))
    )
    return {str(stripe): str(ours) for stripe, ours in conn.execute(stmt)}


def map_customers(conn: Connection, ids: Sequence[str]) -> None:
    """Map customers stored under Stripe's id (and not mapped yet) to that id."""
    if ids:
        cc = customers.c
        conn.execute(
            update(customers)
            .where(id_in(conn, cc.id, sorted(set(ids))), cc.stripe_customer_id.is_(None))
            .values(stripe_customer_id=cc.id)
        )


def mapped_invoices(conn: Connection, refs: Sequence[str]) -> set[str]:
    """The Stripe invoice ids the book already holds, under their own id or mapped."""
    ic = invoices.c
    if not refs:
        return set()
    wanted = sorted(set(refs))
    by_id = select(ic.id).where(id_in(conn, ic.id, wanted))
    by_map = select(ic.stripe_invoice_id).where(id_in(conn, ic.stripe_invoice_id, wanted))
    return {str(x) for x in conn.scalars(by_id.union(by_map)) if x is not None}


def map_invoices(conn: Connection, ids: Sequence[str]) -> None:
    """Map invoices stored under Stripe's id to that id."""
    if ids:
        ic = invoices.c
        conn.execute(
            update(invoices)
            .where(id_in(conn, ic.id, sorted(set(ids))), ic.stripe_invoice_id.is_(None))
            .values(stripe_invoice_id=ic.id)
        )
