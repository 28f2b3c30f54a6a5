"""A page of Stripe subscriptions into the book, with the importer's batched upserts.

A subscription is stored under its customer when the customer is in the book (customers are
synced first); its card is its own default payment method when it has one (stored too, not as
the customer's default), else the customer's default card. Plan, amount, currency, interval and
period end follow Stripe on every sync. The status is Stripe's for a new subscription; for a
stored one only a cancellation follows Stripe, because the dunning states (past_due,
suspended) are the pipeline's to move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from dunning.imports.moves import move_subscriptions
from dunning.imports.staging import stage
from dunning.imports.stripe_customers import KindReport
from dunning.imports.stripe_ids import our_customers
from dunning.imports.upsert import id_in, write_rows
from dunning.imports.writer import CARDS, SUBSCRIPTIONS
from dunning.model import SubscriptionStatus
from dunning.store.tables import customers, payment_methods, subscriptions
from dunning.webhooks.events import MalformedEvent
from dunning.webhooks.records import CardRecord, SubscriptionRecord
from dunning.webhooks.stripe_objects import subscription_record


def subscription_records(
    objs: Sequence[Mapping[str, Any]], report: KindReport
) -> list[SubscriptionRecord]:
    out = []
    for obj in objs:
        try:
            rec = subscription_record(obj)
        except MalformedEvent as exc:
            report.skip(exc.reason)
            continue
        if rec is None:
            report.skip("incomplete, or no priced item")
        else:
            out.append(rec)
    return out


def card_row(card: CardRecord, customer: str, *, default: bool) -> dict[str, Any]:
    return {"id": card.ref, "customer_id": customer, "gateway": "stripe", "token": card.ref,
            "network": card.network, "last4": card.last4, "exp_month": card.exp_month,
            "exp_year": card.exp_year, "is_default": default, "status": "active"}  # fmt: skip


def subscription_row(rec: SubscriptionRecord, card: str | None, now: datetime) -> dict[str, Any]:
    return {"id": rec.ref, "customer_id": rec.customer_ref, "plan": rec.plan,
            "amount": rec.amount, "currency": rec.currency, "interval": rec.interval,
            "status": rec.status, "payment_method_id": card,
            "current_period_end": rec.current_period_end, "last_payment_at": None,
            "suspended_at": now if rec.status == "suspended" else None,
            "cancelled_at": now if rec.status == "cancelled" else None}  # fmt: skip


class _Stored:
    """What the book holds of a page: customers with their default card, cards, subscriptions."""

    def __init__(self, conn: Connection, recs: list[SubscriptionRecord]) -> None:
        pm, sc = payment_methods.c, subscriptions.c
        owners = sorted({r.customer_ref for r in recs})
        self.customers = set(
            conn.scalars(select(customers.c.id).where(id_in(conn, customers.c.id, owners)))
        )
        self.defaults: dict[str, str] = dict(
            conn.execute(
                select(pm.customer_id, pm.id).where(
                    id_in(conn, pm.customer_id, owners), pm.is_default, pm.status == "active"
                )
            ).all()
        )
        refs = sorted({r.card_ref for r in recs if r.card_ref})
        cards = select(pm.id, pm.customer_id, pm.status).where(id_in(conn, pm.id, refs))
        self.cards: dict[str, tuple[str, str]] = {
            row.id: (row.customer_id, row.status) for row in conn.execute(cards)
        }
        subs = select(sc.id, sc.customer_id, sc.status).where(
            id_in(conn, sc.id, [r.ref for r in recs])
        )
        self.subs: dict[str, tuple[str, str]] = {
            row.id: (row.customer_id, row.status) for row in conn.execute(subs)
        }


def write_subscriptions(
    conn: Connection, recs: list[SubscriptionRecord], now: datetime, report: KindReport
) -> None:
    """Upsert a page's subscriptions (and their own cards) in the caller's transaction."""
    if not recs:
        return
    mapped = our_customers(conn, [r.customer_ref for r in recs])
    recs = [replace(r, customer_ref=mapped.get(r.customer_ref, r.customer_ref)) for r in recs]
    stored = _Stored(conn, recs)
    card_rows: dict[str, dict[str, Any]] = {}  # by id: two subscriptions may share a card
    sub_rows: list[dict[str, Any]] = []
    cancelled: list[str] = []
    for rec in recs:
        owner = stored.subs.get(rec.ref, (rec.customer_ref, ""))[0]
        if rec.customer_ref not in stored.customers:
            report.skip("its customer is not in the book")
            continue
        if owner != rec.customer_ref:
            report.skip("stored under another customer")
            continue
        card = _card_for(rec, stored, card_rows)
        sub_rows.append(subscription_row(rec, card, now))
        known = stored.subs.get(rec.ref)
        if known is not None and rec.status == "cancelled" and known[1] != "cancelled":
            cancelled.append(rec.ref)
    if conn.dialect.name == "postgresql":
        # Keys are the tables' own names: the staging tables are cached by them.
        stage(conn, {payment_methods.name: list(card_rows.values()), subscriptions.name: sub_rows})
    write_rows(conn, CARDS, list(card_rows.values()), now=now)
    written = write_rows(conn, SUBSCRIPTIONS, sub_rows, now=now)
    moved = move_subscriptions(conn, sorted(cancelled), SubscriptionStatus.cancelled, now)
    for row in sub_rows:
        if row["id"] not in stored.subs:
            report.inserted += 1
        elif row["id"] in written or (row["id"] in cancelled and row["customer_id"] in moved):
            report.updated += 1
        else:
            report.unchanged += 1


def _card_for(
    rec: SubscriptionRecord, stored: _Stored, card_rows: dict[str, dict[str, Any]]
) -> str | None:
    """The subscription's own card when the book has or gets it, else the customer's default.

    Its details (expiry, last4) are refreshed from Stripe; a card the pipeline removed is not
    taken back.
    """
    ref = rec.card.ref if rec.card is not None else rec.card_ref
    known = stored.cards.get(ref) if ref else None
    if rec.card is not None and (known is None or known == (rec.customer_ref, "active")):
        default = stored.defaults.get(rec.customer_ref) == rec.card.ref
        card_rows[rec.card.ref] = card_row(rec.card, rec.customer_ref, default=default)
        stored.cards[rec.card.ref] = (rec.customer_ref, "active")
        return rec.card.ref
    if ref and known == (rec.customer_ref, "active"):
        return ref
    return stored.defaults.get(rec.customer_ref)
