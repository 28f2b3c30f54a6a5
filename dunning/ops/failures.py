"""What failed lately, for operators: retries stopped, emails refused for good, merchant
webhooks that failed for good."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from dunning.store.tables import audit_log, notifications, outbound_events, webhook_endpoints


def recent_failures(conn: Connection, limit: int) -> dict[str, list[Any]]:
    """The latest ``limit`` of each kind of failure, newest first."""
    stopped = conn.execute(
        select(audit_log.c.at, audit_log.c.invoice_id, audit_log.c.reason, audit_log.c.message)
        .where(audit_log.c.kind == "retry_stopped")
        .order_by(audit_log.c.at.desc())
        .limit(limit)
    ).all()
    emails = conn.execute(
        select(
            notifications.c.created_at,
            notifications.c.kind,
            notifications.c.customer_id,
            notifications.c.last_error,
        )
        .where(notifications.c.status == "failed")
        .order_by(notifications.c.id.desc())
        .limit(limit)
    ).all()
    hooks = conn.execute(
        select(
            outbound_events.c.created_at,
            outbound_events.c.type,
            webhook_endpoints.c.url,
            outbound_events.c.last_error,
        )
        .join(webhook_endpoints, webhook_endpoints.c.id == outbound_events.c.endpoint_id)
        .where(outbound_events.c.status == "failed")
        .order_by(outbound_events.c.id.desc())
        .limit(limit)
    ).all()
    return {"stopped": list(stopped), "emails": list(emails), "hooks": list(hooks)}
