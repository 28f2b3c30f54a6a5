"""What happened around one invoice, as the rows hold it: its emails, the webhooks sent to the
merchant about it, the gateway events that name it, and its subscription's status moves.

The audit rows and attempts of the invoice itself are read by :mod:`dunning.ops.timeline`.
"""

from __future__ import annotations

from sqlalchemy import Connection, RowMapping, case, func, or_, select

from dunning.store.tables import audit_log, notifications, outbound_events, webhook_events

LIMIT = 500  # a page shows at most this many of each kind


def emails(conn: Connection, invoice_id: str) -> list[RowMapping]:
    """The invoice's outbox rows, oldest first."""
    return list(
        conn.execute(
            select(notifications)
            .where(notifications.c.invoice_id == invoice_id)
            .order_by(notifications.c.id)
            .limit(LIMIT)
        ).mappings()
    )


def outbound(conn: Connection, invoice_id: str) -> list[RowMapping]:
    """The merchant webhooks about the invoice: one row per message (not per endpoint), with
    how many endpoints got it and how many delivered."""
    about = outbound_events.c.payload["data"]["invoice_id"].as_string()
    delivered = func.sum(case((outbound_events.c.status == "delivered", 1), else_=0))
    return list(
        conn.execute(
            select(
                outbound_events.c.message_id,
                func.min(outbound_events.c.type).label("type"),
                func.min(outbound_events.c.created_at).label("created_at"),
                func.count().label("endpoints"),
                delivered.label("delivered"),
            )
            .where(outbound_events.c.type.like("invoice.%"), about == invoice_id)
            .group_by(outbound_events.c.message_id)
            .order_by(func.min(outbound_events.c.id))
            .limit(LIMIT)
        ).mappings()
    )


def gateway_events(conn: Connection, invoice_id: str) -> list[RowMapping]:
    """Stored gateway webhooks whose object is the invoice or names it, oldest first."""
    obj = webhook_events.c.payload["data"]["object"]
    return list(
        conn.execute(
            select(
                webhook_events.c.provider,
                webhook_events.c.event_id,
                webhook_events.c.type,
                webhook_events.c.status,
                webhook_events.c.error,
                webhook_events.c.received_at,
            )
            .where(
                or_(obj["id"].as_string() == invoice_id, obj["invoice"].as_string() == invoice_id)
            )
            .order_by(webhook_events.c.id)
            .limit(LIMIT)
        ).mappings()
    )


def subscription_moves(conn: Connection, subscription_id: str) -> list[RowMapping]:
    """The subscription's audited status moves (they name no invoice), oldest first."""
    return list(
        conn.execute(
            select(audit_log)
            .where(
                audit_log.c.subscription_id == subscription_id,
                audit_log.c.invoice_id.is_(None),
                audit_log.c.kind == "subscription_status",
            )
            .order_by(audit_log.c.id)
            .limit(LIMIT)
        ).mappings()
    )
