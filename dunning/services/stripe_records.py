"""Stripe's customer and subscription webhooks keep the book's records current.

``customer.created``/``.updated`` create or update the customer (email, name, locale from
``preferred_locales``, time zone from ``metadata.timezone`` or the address country, the
default card when the book holds it); ``customer.subscription.created``/``.updated``/``.deleted``
create or update the subscription with its real plan, amount, interval and period end, or
cancel it. The mapping of Stripe's fields is the sync's (docs/stripe-sync.md §2). A Stripe
customer is found through ``customers.stripe_customer_id``; a new one is stored under its
Stripe id. A subscription whose customer is not in the book yet (its ``customer.created`` is
still on its way) waits: the event is deferred, and fails for good after an hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select, update

from dunning.errors import NotFound
from dunning.mail.render import LOCALES
from dunning.ports import Pipeline
from dunning.services import lifecycle
from dunning.store import rows
from dunning.store.tables import customers, payment_methods, subscriptions
from dunning.store.uow import transaction
from dunning.store.upsert import insert_ignore
from dunning.webhooks import events as ev
from dunning.webhooks.records import SubscriptionRecord
from dunning.webhooks.stripe_objects import pick_locale

# How long a subscription event waits for its customer before it fails.
WAIT_FOR_CUSTOMER = timedelta(hours=1)


def our_customer(conn: Connection, stripe_ref: str) -> str | None:
    """Our id of a Stripe customer: the one mapped to it, else one stored under its id."""
    cc = customers.c
    mapped = conn.scalar(select(cc.id).where(cc.stripe_customer_id == stripe_ref))
    if mapped is not None:
        return str(mapped)
    return stripe_ref if rows.find(conn, customers, stripe_ref) is not None else None


def apply_customer(c: Pipeline, event: ev.CustomerChanged, now: datetime) -> str:
    """Create or update the customer; returns what it did."""
    rec = event.customer
    if rec.deleted:
        return "ignored"
    values = {"name": rec.name, "locale": pick_locale(rec.preferred_locales, LOCALES),
              "timezone": rec.timezone}  # fmt: skip
    if rec.email:
        values["email"] = rec.email
    with transaction(c.engine) as conn:
        ours = our_customer(conn, rec.ref)
        if ours is None:
            if not rec.email:
                return "ignored"  # the book writes to customers: one without an email is no use
            row = {"id": rec.ref, "stripe_customer_id": rec.ref, "billing_emails": [],
                   "created_at": now, "updated_at": now, **values}  # fmt: skip
            if insert_ignore(conn, customers, [row], conflict=["id"], returning=customers.c.id):
                _default_card(conn, rec.ref, rec.default_card_ref, now)
                return "customer_added"
            ours = rec.ref  # inserted meanwhile by another event: update it
        cc = customers.c
        differs = [cc[k].is_distinct_from(v) for k, v in values.items()]
        changed = conn.execute(
            update(customers).where(cc.id == ours, or_(*differs)).values(**values, updated_at=now)
        ).rowcount
        moved = _default_card(conn, ours, rec.default_card_ref, now)
    return "customer_updated" if changed or moved else "ignored"


def _default_card(conn: Connection, customer: str, ref: str | None, now: datetime) -> bool:
    """Make ``ref`` the customer's default card when the book holds it, active; True if moved."""
    pm = payment_methods.c
    if ref is None:
        return False
    card = conn.execute(
        select(pm.is_default).where(pm.id == ref, pm.customer_id == customer, pm.status == "active")
    ).first()
    if card is None or card.is_default:
        return False
    conn.execute(
        update(payment_methods)
        .where(pm.customer_id == customer, pm.is_default)
        .values(is_default=False, updated_at=now)
    )
    conn.execute(
        update(payment_methods).where(pm.id == ref).values(is_default=True, updated_at=now)
    )
    conn.execute(  # links carry the generation: a new default card invalidates older links
        update(customers)
        .where(customers.c.id == customer)
        .values(card_generation=customers.c.card_generation + 1, updated_at=now)
    )
    return True


def apply_subscription(
    c: Pipeline, event: ev.SubscriptionChanged, rec: SubscriptionRecord, now: datetime
) -> str:
    """Create, update or cancel the subscription; returns what it did."""
    with transaction(c.engine) as conn:
        known = rows.find(conn, subscriptions, rec.ref)
        if known is None and (event.cancelled or rec.status == "cancelled"):
            return "ignored"  # nothing of it in the book to cancel
        owner = str(known["customer_id"]) if known else our_customer(conn, rec.customer_ref)
        if owner is None:
            if now - event.occurred_at < WAIT_FOR_CUSTOMER:
                return "deferred"
            raise NotFound(
                f"subscription {rec.ref!r}: its customer {rec.customer_ref!r} is not in the "
                "book (run dunning sync stripe)"
            )
        card = _card(conn, owner, rec.card_ref)
        if known is None:
            row = _row(rec, owner, card, now)
            insert_ignore(conn, subscriptions, [row], conflict=["id"])
            return "subscription_added"
        if not event.cancelled:
            return _update(conn, rec, card or known["payment_method_id"], now)
    lifecycle.cancel_subscription(c, rec.ref, now, reason=event.provider)
    return "cancelled"


def _card(conn: Connection, customer: str, ref: str | None) -> str | None:
    """The subscription's own card when the book holds it, else the customer's default."""
    pm = payment_methods.c
    mine = (pm.customer_id == customer, pm.status == "active")
    if ref is not None:
        found = conn.scalar(select(pm.id).where(pm.id == ref, *mine))
        if found is not None:
            return str(found)
    default = conn.scalar(select(pm.id).where(pm.is_default, *mine))
    return None if default is None else str(default)


def _row(rec: SubscriptionRecord, owner: str, card: str | None, now: datetime) -> dict[str, Any]:
    return {"id": rec.ref, "customer_id": owner, "plan": rec.plan, "amount": rec.amount,
            "currency": rec.currency, "interval": rec.interval, "status": rec.status,
            "payment_method_id": card, "current_period_end": rec.current_period_end,
            "suspended_at": now if rec.status == "suspended" else None,
            "created_at": now, "updated_at": now}  # fmt: skip


def _update(conn: Connection, rec: SubscriptionRecord, card: str | None, now: datetime) -> str:
    """Plan, amount, currency, interval, period end and card follow Stripe; the status is the
    pipeline's (past_due, suspended), except a cancellation."""
    sc = subscriptions.c
    values: dict[str, Any] = {"plan": rec.plan, "amount": rec.amount, "currency": rec.currency,
                              "interval": rec.interval, "payment_method_id": card}  # fmt: skip
    if rec.current_period_end is not None:
        values["current_period_end"] = rec.current_period_end
    differs = [sc[k].is_distinct_from(v) for k, v in values.items()]
    changed = conn.execute(
        update(subscriptions)
        .where(sc.id == rec.ref, or_(*differs))
        .values(**values, updated_at=now)
    ).rowcount
    return "updated" if changed else "ignored"
