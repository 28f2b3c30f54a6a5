"""Records that gateway events bring before the pipeline knew them: a customer, a card and a
subscription named by a failed charge, a card attached at the gateway."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from dunning.errors import NotFound
from dunning.services.stripe_records import our_customer
from dunning.store import rows
from dunning.store.tables import customers, payment_methods, subscriptions
from dunning.store.upsert import insert_ignore
from dunning.webhooks import events as ev


def insert_card(
    conn: Connection,
    ref: str,
    customer_ref: str,
    card: ev.CardInfo,
    provider: str,
    now: datetime,
    *,
    default: bool = False,
) -> None:
    insert_ignore(
        conn,
        payment_methods,
        [
            {
                "id": ref,
                "customer_id": customer_ref,
                "gateway": provider,
                "token": ref,
                "network": card.network,
                "last4": card.last4 or "0000",
                "exp_month": card.exp_month or 12,
                "exp_year": card.exp_year or 2099,
                "is_default": default,
                "status": "active",
                "created_at": now,
                "updated_at": now,
            }
        ],
        conflict=["id"],
    )


def _owner(conn: Connection, event: ev.PaymentFailed | ev.ActionRequired) -> str:
    """Our id of the customer the event's subscription belongs to; ``NotFound`` when the
    event does not say whose it is and we do not know the customer."""
    info = getattr(event, "customer", None)
    customer_ref = event.customer_ref or (info.ref if info else None)
    if customer_ref is not None and event.provider == "stripe":
        customer_ref = our_customer(conn, customer_ref) or customer_ref  # mapped to ours
    if customer_ref is None or (
        rows.find(conn, customers, customer_ref) is None and (info is None or not info.email)
    ):
        raise NotFound(
            f"subscription {event.subscription_ref!r} is unknown and the event "
            "does not say whose it is"
        )
    return customer_ref


def _insert_customer(
    conn: Connection, customer_ref: str, event: ev.PaymentFailed | ev.ActionRequired, now: datetime
) -> None:
    info, billing = getattr(event, "customer", None), event.billing
    insert_ignore(
        conn,
        customers,
        [
            {
                "id": customer_ref,
                "email": info.email if info else "",
                "name": info.name or "" if info else "",
                "billing_emails": [],
                "timezone": billing.timezone if billing and billing.timezone else "UTC",
                "stripe_customer_id": customer_ref if event.provider == "stripe" else None,
                "created_at": now,
                "updated_at": now,
            }
        ],
        conflict=["id"],
    )


def _insert_event_card(
    conn: Connection, customer_ref: str, event: ev.PaymentFailed | ev.ActionRequired, now: datetime
) -> str | None:
    """The event's card, saved (the customer's default when they have none); its id."""
    card = getattr(event, "card", None)
    if card is None or not card.ref or not card.last4:
        return None
    has_default = (
        conn.execute(
            select(payment_methods.c.id).where(
                payment_methods.c.customer_id == customer_ref,
                payment_methods.c.is_default.is_(True),
            )
        ).first()
        is not None
    )
    insert_card(conn, card.ref, customer_ref, card, event.provider, now, default=not has_default)
    return str(card.ref)


def ensure_subscription(
    conn: Connection, event: ev.PaymentFailed | ev.ActionRequired, now: datetime
) -> None:
    """Create the customer, card and subscription an event names when they are new to us,
    in the caller's transaction."""
    assert event.subscription_ref is not None
    if rows.find(conn, subscriptions, event.subscription_ref) is not None:
        return
    customer_ref = _owner(conn, event)
    _insert_customer(conn, customer_ref, event, now)
    card_id = _insert_event_card(conn, customer_ref, event, now)
    billing = event.billing
    insert_ignore(
        conn,
        subscriptions,
        [
            {
                "id": event.subscription_ref,
                "customer_id": customer_ref,
                # The invoice's own plan and interval; "default" only when it names no price.
                "plan": billing.plan if billing and billing.plan else "default",
                "amount": event.amount,
                "currency": event.currency.upper(),
                "interval": billing.interval if billing and billing.interval else "month",
                "status": "active",
                "payment_method_id": card_id,
                "created_at": now,
                "updated_at": now,
            }
        ],
        conflict=["id"],
    )
