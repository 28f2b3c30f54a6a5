"""The audit log: what happened to which invoice, and why. Also the simulation's journal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from dunning.store.tables import audit_log


def audit_row(
    kind: str,
    at: datetime,
    *,
    invoice_id: str | None = None,
    subscription_id: str | None = None,
    customer_id: str | None = None,
    payment_method_id: str | None = None,
    reason: str | None = None,
    message: str | None = None,
    actor: str = "system",
    **data: Any,
) -> dict[str, Any]:
    """One audit row as a dict, ready for a bulk insert."""
    return {
        "kind": kind,
        "at": at,
        "invoice_id": invoice_id,
        "subscription_id": subscription_id,
        "customer_id": customer_id,
        "payment_method_id": payment_method_id,
        "actor": actor,
        "reason": reason,
        "message": message,
        "data": {k: _plain(v) for k, v in data.items()},
    }


def record(conn: Connection, kind: str, at: datetime, **fields: Any) -> None:
    """Write one audit row in the caller's transaction."""
    conn.execute(insert(audit_log), [audit_row(kind, at, **fields)])


def record_many(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(audit_log), list(rows))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value
