"""Set-based updates of stored rows that an import asks for (one statement each).

Default-card flips, the card generation of customers whose cards changed, and subscription
moves, each only where the lifecycle allows it. The ids travel as one JSON parameter.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, update

from dunning.imports.upsert import id_in
from dunning.model import SubscriptionStatus, allowed_sources
from dunning.store.tables import customers, payment_methods, subscriptions


def clear_old_defaults(conn: Connection, ids: list[str], now: datetime) -> set[str]:
    """Unset the default flag of these cards; return their customers."""
    pm = payment_methods.c
    changed: set[str] = set()
    if ids:
        stmt = (
            update(payment_methods)
            .where(id_in(conn, pm.id, ids), pm.is_default, pm.status == "active")
            .values(is_default=False, updated_at=now)
            .returning(pm.customer_id)
        )
        changed.update(conn.scalars(stmt))
    return changed


def bump_card_generation(conn: Connection, ids: list[str], now: datetime) -> None:
    """Bump these customers' card generation.

    Links carry the generation: a card changed by an import invalidates older links too.
    """
    if ids:
        conn.execute(
            update(customers)
            .where(id_in(conn, customers.c.id, ids))
            .values(card_generation=customers.c.card_generation + 1, updated_at=now)
        )


def apply_statuses(conn: Connection, wanted: dict[str, str], now: datetime) -> set[str]:
    """Move subscriptions to the status wanted for each; return the customers of those moved."""
    touched: set[str] = set()
    for status in sorted(set(wanted.values())):
        ids = sorted(key for key, value in wanted.items() if value == status)
        touched |= move_subscriptions(conn, ids, SubscriptionStatus(status), now)
    return touched


def move_subscriptions(
    conn: Connection, ids: list[str], target: SubscriptionStatus, now: datetime
) -> set[str]:
    """Move subscriptions to ``target`` where the lifecycle allows it; return their customers."""
    sc = subscriptions.c
    values: dict[str, object] = {"status": str(target), "updated_at": now}
    if target is SubscriptionStatus.suspended:
        values["suspended_at"] = now
    elif target is SubscriptionStatus.cancelled:
        values["cancelled_at"] = now
    touched: set[str] = set()
    if ids:
        stmt = (
            update(subscriptions)
            .where(id_in(conn, sc.id, ids), sc.status.in_(sorted(allowed_sources(target))))
            .values(values)
            .returning(sc.customer_id)
        )
        touched.update(conn.scalars(stmt))
    return touched
