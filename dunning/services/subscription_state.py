"""Moving subscriptions along their lifecycle (active, past due, suspended, cancelled), with
the audit row and the merchant's webhook of each move."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from dunning.model import SubscriptionStatus
from dunning.services import outbound
from dunning.services.audit import audit_row, record_many
from dunning.store import status
from dunning.store.tables import subscriptions


def move_subscriptions(
    conn: Connection,
    subs: Sequence[Mapping[Any, Any]],
    target: SubscriptionStatus,
    now: datetime,
    *,
    reason: str,
) -> set[str]:
    """Move the subscriptions (rows as read) to ``target`` where the lifecycle allows; a move
    it forbids, or a row changed meanwhile, is skipped. Returns the ids moved."""
    extra: dict[str, Any] = {"updated_at": now}
    if target is SubscriptionStatus.suspended:
        extra["suspended_at"] = now
    if target is SubscriptionStatus.cancelled:
        extra["cancelled_at"] = now
    moved_ids = status.move(
        conn, subscriptions, [(s["id"], s["status"]) for s in subs], target, **extra
    )
    moved = [s for s in subs if s["id"] in moved_ids]
    record_many(
        conn,
        [
            audit_row(
                "subscription_status",
                now,
                subscription_id=sub["id"],
                customer_id=sub["customer_id"],
                reason=reason,
                **{"from": sub["status"], "to": target.value},
            )
            for sub in moved
        ],
    )
    outbound.subscriptions_status_changed(conn, moved, target.value, now)
    return moved_ids


def move_subscription(
    conn: Connection,
    sub: Mapping[Any, Any],
    target: SubscriptionStatus,
    now: datetime,
    *,
    reason: str,
) -> bool:
    """:func:`move_subscriptions` for one subscription."""
    return bool(move_subscriptions(conn, [sub], target, now, reason=reason))
