"""Set-based claims: one statement marks a batch of due rows as enqueued until a lease ends.

The claim, not the leader lock, is what keeps two producers from enqueueing the same item twice
within a lease; a message lost after the claim is found again once the lease runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement


def claim_due(
    conn: Connection,
    table: Table,
    *,
    due: Sequence[ColumnElement[bool]],
    order_by: Any,
    claim_column: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    returning: Sequence[Any],
) -> list[Any]:
    """Claim up to ``limit`` due, unclaimed rows; return the ``returning`` columns of each."""
    claim = table.c[claim_column]
    free = or_(claim.is_(None), claim <= now)
    pick = select(table.c.id).where(and_(*due), free).order_by(order_by).limit(limit)
    if conn.dialect.name == "postgresql":
        # Two producers never wait on, or take, each other's rows.
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(table)
        .where(table.c.id.in_(pick.scalar_subquery()), free)
        .values({claim_column: lease_until})
        .returning(*returning)
    )
    return list(conn.execute(stmt).all())
