"""Outbound events: what the merchant's own application is told (Standard Webhooks).

:func:`emit` writes one ``outbound_events`` row per enabled endpoint that wants the event, in
the caller's transaction, so an event exists exactly when the change it reports was committed.
The producer finds due rows and :mod:`dunning.services.outbound_delivery` sends them. The
``webhook-id`` is fixed when the event is written, so every retry carries the same one and a
receiver can drop duplicates. Payloads carry ids, amounts and card brand/last4, never tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from dunning.errors import PermanentError
from dunning.store.tables import notifications, outbound_events, payment_methods, webhook_endpoints

EVENT_TYPES = (
    "invoice.payment_failed",
    "subscription.past_due",
    "subscription.suspended",
    "subscription.reactivated",
    "invoice.recovered",
    "invoice.written_off",
    "card.updated",
    "card.expiring",
)
# A failing endpoint still receives new events, so it catches up once it is fixed; an
# operator removes an endpoint to stop them.
ENABLED = ("active", "failing")


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex


def _targets(conn: Connection, event_type: str) -> list[int]:
    rows = conn.execute(
        select(webhook_endpoints.c.id, webhook_endpoints.c.event_types).where(
            webhook_endpoints.c.status.in_(ENABLED)
        )
    ).all()
    return [r.id for r in rows if not r.event_types or event_type in r.event_types]


def emit(conn: Connection, event_type: str, data: dict[str, Any], now: datetime) -> list[int]:
    """Queue ``event_type`` for every enabled endpoint that wants it; return the new row ids."""
    return emit_many(conn, event_type, [data], now)


def emit_many(
    conn: Connection, event_type: str, datas: Sequence[dict[str, Any]], now: datetime
) -> list[int]:
    """:func:`emit` for several events of one type, each its own message; endpoints read once."""
    if event_type not in EVENT_TYPES:
        raise PermanentError(f"unknown outbound event type {event_type!r}")
    targets = _targets(conn, event_type) if datas else []
    if not targets:
        return []
    rows = []
    for data in datas:
        message_id = new_message_id()
        payload = {"type": event_type, "timestamp": now.isoformat(), "data": data}
        rows += [
            {
                "message_id": message_id,
                "endpoint_id": endpoint_id,
                "type": event_type,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in targets
        ]
    stmt = insert(outbound_events).returning(outbound_events.c.id)
    return [int(i) for i in conn.execute(stmt, rows).scalars()]


# -- the events the pipeline emits -------------------------------------------------------------


def _subscription_event(sub: Mapping[Any, Any], target: str) -> str | None:
    if target == "past_due":
        return "subscription.past_due"
    if target == "suspended":
        return "subscription.suspended"
    if target == "active" and sub["status"] == "suspended":
        return "subscription.reactivated"
    return None


_SUBSCRIPTION_EVENTS = (
    "subscription.past_due",
    "subscription.suspended",
    "subscription.reactivated",
)


def subscriptions_status_changed(
    conn: Connection, subs: Sequence[Mapping[Any, Any]], target: str, now: datetime
) -> None:
    """``subscription.past_due``, ``subscription.suspended``, or ``subscription.reactivated``
    when leaving suspension, for subscriptions that moved from their row's status to
    ``target``."""
    for event_type in _SUBSCRIPTION_EVENTS:
        datas = [
            {
                "subscription_id": sub["id"],
                "customer_id": sub["customer_id"],
                "plan": sub["plan"],
                "amount": sub["amount"],
                "currency": sub["currency"],
                "status": target,
                "previous_status": sub["status"],
            }
            for sub in subs
            if _subscription_event(sub, target) == event_type
        ]
        emit_many(conn, event_type, datas, now)


def subscription_status_changed(
    conn: Connection, sub: Mapping[Any, Any], target: str, now: datetime
) -> None:
    """:func:`subscriptions_status_changed` for one subscription."""
    subscriptions_status_changed(conn, [sub], target, now)


def invoice_events(
    conn: Connection,
    event_type: str,
    invs: Sequence[Mapping[Any, Any]],
    now: datetime,
    *,
    per_invoice: Mapping[str, dict[str, Any]] | None = None,
    **extra: Any,
) -> None:
    """``invoice.*`` events: ids, amount, currency, attempts, plus ``extra`` (status…) and
    what ``per_invoice`` adds for each invoice id."""
    datas = [
        {
            "invoice_id": inv["id"],
            "subscription_id": inv["subscription_id"],
            "customer_id": inv["customer_id"],
            "amount": inv["amount"],
            "currency": inv["currency"],
            "attempt_count": inv["attempt_count"],
            "first_failed_at": (
                inv["first_failed_at"].isoformat() if inv["first_failed_at"] else None
            ),
            **extra,
            **(per_invoice or {}).get(inv["id"], {}),
        }
        for inv in invs
    ]
    emit_many(conn, event_type, datas, now)


def invoice_event(
    conn: Connection, event_type: str, inv: Mapping[Any, Any], now: datetime, **extra: Any
) -> None:
    """:func:`invoice_events` for one invoice."""
    invoice_events(conn, event_type, [inv], now, **extra)


def first_failure(
    conn: Connection, inv: Mapping[Any, Any], decline_code: str | None, now: datetime
) -> None:
    """``invoice.payment_failed``: the invoice's first charge failed and dunning begins (later
    failures of the same invoice emit nothing)."""
    retry = inv["next_attempt_at"]
    invoice_event(
        conn, "invoice.payment_failed", inv, now, status=inv["status"], decline_code=decline_code,
        next_retry_at=retry.isoformat() if retry is not None else None,
        update_card_needed=inv["last_decline_class"] in ("needs_new_card", "never"),
    )  # fmt: skip


def card_view(card: Mapping[Any, Any] | None) -> dict[str, Any] | None:
    """What an event may say about a card: id, brand, last four, expiry. Never the token."""
    if card is None:
        return None
    return {
        "payment_method_id": card["id"],
        "brand": card["network"],
        "last4": card["last4"],
        "exp_month": card["exp_month"],
        "exp_year": card["exp_year"],
    }


def card_updated(
    conn: Connection,
    customer_id: str,
    card: Mapping[Any, Any],
    previous: Mapping[Any, Any] | None,
    now: datetime,
) -> None:
    """``card.updated``: the customer's card was replaced."""
    data = {"customer_id": customer_id, "card": card_view(card), "previous": card_view(previous)}
    emit(conn, "card.updated", data, now)


def cards_expiring(conn: Connection, notification_ids: Sequence[int], now: datetime) -> None:
    """``card.expiring``: one event per newly queued expiry reminder."""
    if not notification_ids or not _targets(conn, "card.expiring"):
        return
    rows = conn.execute(
        select(
            notifications.c.dedup_key,
            notifications.c.customer_id,
            notifications.c.context,
            payment_methods.c.id,
            payment_methods.c.network,
            payment_methods.c.last4,
            payment_methods.c.exp_month,
            payment_methods.c.exp_year,
        )
        .join(payment_methods, payment_methods.c.id == notifications.c.payment_method_id)
        .where(notifications.c.id.in_(list(notification_ids)))
    ).mappings()
    datas = [
        {
            "customer_id": row["customer_id"],
            "card": card_view(row),
            "expires_on": (row["context"] or {}).get("expires_on"),
            "reminder": row["dedup_key"].rsplit(":", 1)[-1],
        }
        for row in rows
    ]
    emit_many(conn, "card.expiring", datas, now)
