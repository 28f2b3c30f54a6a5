"""What goes in and out: the email outbox, stored gateway webhook events, the merchant's
endpoints and the webhooks queued for them. One email per dedup key, one event per
``(provider, event_id)``."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from dunning.store.tables.base import ID, metadata, timestamps
from dunning.store.types import UtcDateTime

notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedup_key", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("customer_id", ID, nullable=False),
    Column("invoice_id", ID),
    Column("payment_method_id", ID),
    Column("to_addr", String(320), nullable=False),
    Column("cc", JSON, nullable=False, default=list),
    Column("locale", String(16), nullable=False),
    Column("context", JSON, nullable=False),  # what the template needs; never card numbers
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("not_before", UtcDateTime(), nullable=False),  # after the customer's quiet hours
    Column("enqueued_until", UtcDateTime()),  # the producer's claim: not enqueued again before
    Column("claimed_until", UtcDateTime()),  # the sender's lease
    Column("send_attempts", Integer, nullable=False, server_default="0"),
    Column("message_id", String(255), nullable=False),
    Column("last_error", Text),
    Column("sent_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("dedup_key", name="uq_notifications_dedup_key"),
    CheckConstraint("status IN ('pending', 'sent', 'failed', 'cancelled')", name="status"),
)
Index(
    "ix_notifications_due",
    notifications.c.not_before,
    sqlite_where=text("status = 'pending'"),
    postgresql_where=text("status = 'pending'"),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("type", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False, server_default="received"),
    Column("error", Text),
    Column("claimed_until", UtcDateTime()),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("processed_at", UtcDateTime()),
    UniqueConstraint("provider", "event_id", name="uq_webhook_events_provider_event"),
)
Index(
    "ix_webhook_events_unprocessed",
    webhook_events.c.received_at,
    sqlite_where=text("status = 'received'"),
    postgresql_where=text("status = 'received'"),
)
Index(  # `dunning status` and `dunning dlq list` read the events that failed for good
    "ix_webhook_events_failed",
    webhook_events.c.processed_at,
    sqlite_where=text("status = 'failed'"),
    postgresql_where=text("status = 'failed'"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(200), nullable=False),
    Column("event_types", JSON, nullable=False, default=list),  # empty: all
    Column("status", String(16), nullable=False, server_default="active"),
    Column("failing_since", UtcDateTime()),
    *timestamps(),
)

outbound_events = Table(
    "outbound_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False),  # webhook-id, stable across retries
    Column("endpoint_id", Integer, ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("claimed_until", UtcDateTime()),
    Column("last_error", Text),
    Column("delivered_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("endpoint_id", "message_id", name="uq_outbound_events_endpoint_message"),
)
Index(
    "ix_outbound_events_due",
    outbound_events.c.next_attempt_at,
    sqlite_where=text("status = 'pending'"),
    postgresql_where=text("status = 'pending'"),
)
