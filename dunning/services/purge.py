"""Deleting card tokens: two years (the policy's retention) after the customer's last
successful payment, and at once for cards the customer removed. An audit row each time."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update

from dunning.ports import Pipeline
from dunning.services.audit import record
from dunning.store import rows
from dunning.store.tables import customers, payment_methods

log = logging.getLogger(__name__)


def _cutoff(c: Pipeline, now: datetime) -> datetime:
    days = c.policy.for_plan("default", "month").token_retention_days
    return now - timedelta(days=days)


def purge_candidates(c: Pipeline, now: datetime, *, limit: int) -> list[str]:
    """Cards whose token is due for deletion (removed cards, or retention over)."""
    cutoff = _cutoff(c, now)
    last_paid = func.coalesce(customers.c.last_payment_at, customers.c.created_at)
    stmt = (
        select(payment_methods.c.id)
        .join(customers, customers.c.id == payment_methods.c.customer_id)
        .where(
            payment_methods.c.token.is_not(None),
            or_(
                payment_methods.c.status == "removed",
                and_(payment_methods.c.status == "active", last_paid < cutoff),
            ),
        )
        .limit(limit)
    )
    with c.engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def purge_tokens(c: Pipeline, card_ids: Sequence[str], now: datetime) -> list[str]:
    """Delete each card's token at the gateway and in the store; re-checks every condition."""
    purged = []
    cutoff = _cutoff(c, now)
    for card_id in card_ids:
        with c.engine.connect() as conn:
            card = rows.find(conn, payment_methods, card_id)
            if card is None or card["token"] is None:
                continue
            cust = rows.get(conn, customers, card["customer_id"])
        last_paid = cust["last_payment_at"] or cust["created_at"]
        if card["status"] == "removed":
            reason = "card_removed"
        elif card["status"] == "active" and last_paid < cutoff:
            reason = "retention"
        else:
            continue  # paid within the window since it was found: keep it
        c.gateway.delete_token(card["token"])
        with c.engine.begin() as conn:
            changed = conn.execute(
                update(payment_methods)
                .where(payment_methods.c.id == card_id, payment_methods.c.token == card["token"])
                .values(token=None, status="purged", is_default=False, updated_at=now)
            ).rowcount
            if changed:
                record(
                    conn,
                    "token_purged",
                    now,
                    customer_id=card["customer_id"],
                    payment_method_id=card_id,
                    reason=reason,
                    payment_method=card_id,
                    last_payment_at=last_paid,
                )
                purged.append(card_id)
        log.info("token of card %s deleted (%s)", card_id, reason)
    return purged
