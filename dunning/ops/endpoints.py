"""The merchant's webhook endpoints: register, list, remove.

A secret is ``whsec_`` and the base64 of 24 random bytes, shown once when it is made; a
removed endpoint keeps its history, and its undelivered events are cancelled.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from dunning.errors import ConfigError, NotFound, UsageError
from dunning.services.outbound import EVENT_TYPES
from dunning.store.tables import outbound_events, webhook_endpoints
from dunning.webhooks.destinations import Rules, check_endpoint
from dunning.webhooks.signatures import STANDARD_PREFIX, sign_standard


def new_secret() -> str:
    return STANDARD_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def check_events(events: Sequence[str]) -> list[str]:
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise UsageError(
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
        )
    return sorted(set(events))


def add_endpoint(
    conn: Connection,
    url: str,
    now: datetime,
    *,
    rules: Rules,
    events: Sequence[str] = (),
    secret: str | None = None,
) -> tuple[int, str]:
    """Register an endpoint (no events listed: all of them); return its id and secret.
    ``rules`` say which URLs may be registered (:mod:`dunning.webhooks.destinations`)."""
    secret = secret or new_secret()
    if not secret.startswith(STANDARD_PREFIX):
        raise UsageError("a webhook endpoint secret must start with 'whsec_'")
    try:
        sign_standard(secret, "msg_check", 0, b"")
    except ConfigError as exc:  # the key after whsec_ is not base64
        raise UsageError(str(exc)) from None
    new_id = conn.execute(
        insert(webhook_endpoints)
        .values(
            url=check_endpoint(url, rules),
            secret=secret,
            event_types=check_events(events),
            status="active",
            created_at=now,
            updated_at=now,
        )
        .returning(webhook_endpoints.c.id)
    ).scalar_one()
    return int(new_id), secret


def list_endpoints(conn: Connection) -> list[dict[str, Any]]:
    """Every endpoint not removed, with how many of its events wait, and failed for good."""
    counts: dict[tuple[int, str], int] = {
        (row.endpoint_id, row.status): int(row.n)
        for row in conn.execute(
            select(outbound_events.c.endpoint_id, outbound_events.c.status, func.count().label("n"))
            .where(outbound_events.c.status.in_(["pending", "failed"]))
            .group_by(outbound_events.c.endpoint_id, outbound_events.c.status)
        )
    }
    rows = conn.execute(
        select(webhook_endpoints)
        .where(webhook_endpoints.c.status != "removed")
        .order_by(webhook_endpoints.c.id)
    ).mappings()
    return [
        {
            "id": r["id"],
            "url": r["url"],
            "events": list(r["event_types"]) or ["*"],
            "status": r["status"],
            "failing_since": r["failing_since"],
            "pending": counts.get((r["id"], "pending"), 0),
            "failed": counts.get((r["id"], "failed"), 0),
            "created_at": r["created_at"],
        }
        for r in rows
    ]


def remove_endpoint(conn: Connection, endpoint_id: int, now: datetime) -> int:
    """Stop sending to an endpoint; returns how many undelivered events were cancelled."""
    changed = conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.status != "removed")
        .values(status="removed", updated_at=now)
    ).rowcount
    if not changed:
        raise NotFound(f"webhook endpoint {endpoint_id} does not exist (or was removed)")
    return int(
        conn.execute(
            update(outbound_events)
            .where(outbound_events.c.endpoint_id == endpoint_id)
            .where(outbound_events.c.status == "pending")
            .values(status="cancelled", claimed_until=None)
        ).rowcount
    )
