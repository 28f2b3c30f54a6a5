"""Overpayments: money a charge collected for an invoice that was not owed any more (paid by
another charge or elsewhere, or void). Operators see what waits for a refund and say when it
was refunded; each of those is audited."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from dunning.errors import InvalidTransition, NotFound
from dunning.services.audit import record
from dunning.store.tables import overpayments

DUE = "refund_due"
REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class Overpayment:
    id: int
    invoice_id: str
    customer_id: str
    attempt_key: str | None
    gateway_charge_id: str | None
    amount: int
    currency: str
    reason: str  # paid_twice | not_owed
    invoice_status: str
    status: str
    found_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def listed(conn: Connection, *, due_only: bool = True, limit: int = 200) -> list[Overpayment]:
    """The overpayments, oldest first; only those still to refund unless ``due_only`` is off."""
    stmt = select(overpayments).order_by(overpayments.c.found_at, overpayments.c.id).limit(limit)
    if due_only:
        stmt = stmt.where(overpayments.c.status == DUE)
    return [Overpayment(**row) for row in conn.execute(stmt).mappings()]


def due_totals(conn: Connection) -> dict[str, tuple[int, int]]:
    """Per currency: how many overpayments wait for a refund, and their amount."""
    stmt = (
        select(overpayments.c.currency, func.count(), func.sum(overpayments.c.amount))
        .where(overpayments.c.status == DUE)
        .group_by(overpayments.c.currency)
    )
    return {cur: (int(n), int(total or 0)) for cur, n, total in conn.execute(stmt)}


def mark_refunded(
    conn: Connection, overpayment_id: int, now: datetime, *, by: str, note: str
) -> None:
    """Record that the money was given back (at the gateway or otherwise)."""
    if not note.strip():
        raise InvalidTransition("say how it was refunded: the note must not be empty")
    row = (
        conn.execute(select(overpayments).where(overpayments.c.id == overpayment_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"overpayment {overpayment_id} does not exist")
    if row["status"] != DUE:
        raise InvalidTransition(
            f"overpayment {overpayment_id} was refunded already ({row['resolved_at']})"
        )
    conn.execute(
        update(overpayments)
        .where(overpayments.c.id == overpayment_id, overpayments.c.status == DUE)
        .values(status=REFUNDED, resolved_at=now, resolved_by=by[:64], note=note.strip())
    )
    record(
        conn, "overpayment_refunded", now, invoice_id=row["invoice_id"],
        customer_id=row["customer_id"], actor=by[:64], reason="refunded", message=note.strip(),
        attempt_key=row["attempt_key"], amount=row["amount"], currency=row["currency"],
    )  # fmt: skip
