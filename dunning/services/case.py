"""A dunning case: an invoice with its subscription, customer and card, read once per
transaction and passed down, so no step reads the same row again."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from dunning.errors import NotFound
from dunning.policy.config import PolicyBook
from dunning.policy.types import PlanPolicy
from dunning.store import rows
from dunning.store.tables import customers, invoices, payment_methods, subscriptions


@dataclass(frozen=True, slots=True)
class Case:
    invoice: Mapping[Any, Any]
    subscription: Mapping[Any, Any]
    customer: Mapping[Any, Any]
    card: Mapping[Any, Any] | None  # the subscription's card, when it has one

    @property
    def id(self) -> str:
        return str(self.invoice["id"])

    @property
    def timezone(self) -> str:
        return str(self.customer["timezone"] or "UTC")

    def policy(self, book: PolicyBook) -> PlanPolicy:
        return book.for_plan(self.subscription["plan"], self.subscription["interval"])


def load_cases(
    conn: Connection, invoice_ids: Iterable[str], *, required: bool = True
) -> dict[str, Case]:
    """The cases of ``invoice_ids`` in four statements. :class:`NotFound` names a missing
    invoice, unless ``required`` is false (then it is left out)."""
    invs = rows.by_ids(conn, invoices, invoice_ids, required=required)
    subs = rows.by_ids(conn, subscriptions, (i["subscription_id"] for i in invs.values()))
    custs = rows.by_ids(conn, customers, (i["customer_id"] for i in invs.values()))
    card_rows = rows.by_ids(conn, payment_methods, (s["payment_method_id"] for s in subs.values()))
    out = {}
    for key, inv in invs.items():
        sub = subs.get(inv["subscription_id"])
        cust = custs.get(inv["customer_id"])
        if sub is None or cust is None:
            raise NotFound(f"invoice {key!r} names a subscription or customer that does not exist")
        out[key] = Case(inv, sub, cust, card_rows.get(sub["payment_method_id"] or ""))
    return out


def load_case(conn: Connection, invoice_id: str) -> Case:
    """One case; :class:`NotFound` when the invoice does not exist."""
    return load_cases(conn, [invoice_id])[invoice_id]
