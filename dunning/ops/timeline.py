"""One invoice as an operator needs it: its state, whose it is, which card, and what happened.

The timeline is the invoice's audit rows (read through their index) with its payment attempts.
A card appears as brand, last four and expiry; a token never leaves the store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from dunning.store import rows
from dunning.store.tables import (
    audit_log,
    customers,
    invoices,
    payment_attempts,
    payment_methods,
    subscriptions,
)

INVOICE_FIELDS = (
    "id",
    "status",
    "amount",
    "currency",
    "attempt_count",
    "first_failed_at",
    "next_attempt_at",
    "next_attempt_reason",
    "next_step_at",
    "steps_done",
    "last_decline_code",
    "last_decline_class",
    "stop_reason",
    "paused",
    "paid_at",
    "created_at",
)
ATTEMPT_FIELDS = (
    "attempt_no",
    "created_at",
    "status",
    "initiator",
    "reason",
    "payment_method_id",
    "network",
    "amount",
    "currency",
    "decline_code",
    "decline_class",
    "network_code",
    "advice_code",
    "network_advice_code",
    "idempotency_key",
)


def _card(conn: Connection, card_id: str | None) -> dict[str, Any] | None:
    row = rows.find(conn, payment_methods, card_id) if card_id else None
    if row is None:
        return None
    return {
        "id": row["id"],
        "brand": row["network"],
        "last4": row["last4"],
        "exp": f"{row['exp_month']:02d}/{row['exp_year']}",
        "status": row["status"],
        "blocked_reason": row["blocked_reason"],
    }


def invoice_report(conn: Connection, invoice_id: str) -> dict[str, Any]:
    """The invoice, its subscription, customer and card, and its whole timeline, in order."""
    inv = rows.get(conn, invoices, invoice_id)
    sub = rows.get(conn, subscriptions, inv["subscription_id"])
    cust = rows.get(conn, customers, inv["customer_id"])
    audit = conn.execute(
        select(audit_log).where(audit_log.c.invoice_id == invoice_id).order_by(audit_log.c.id)
    ).mappings()
    attempts = conn.execute(
        select(payment_attempts)
        .where(payment_attempts.c.invoice_id == invoice_id)
        .order_by(payment_attempts.c.attempt_no)
    ).mappings()
    timeline = [
        {
            "at": row["at"],
            "kind": row["kind"],
            "actor": row["actor"],
            "reason": row["reason"],
            "message": row["message"],
            "data": row["data"] or {},
        }
        for row in audit
    ]
    return {
        "invoice": {k: inv[k] for k in INVOICE_FIELDS},
        "subscription": {
            k: sub[k] for k in ("id", "plan", "interval", "status", "amount", "currency")
        },
        "customer": {k: cust[k] for k in ("id", "email", "name", "locale", "timezone")},
        "card": _card(conn, inv["retry_payment_method_id"] or sub["payment_method_id"]),
        "attempts": [{k: a[k] for k in ATTEMPT_FIELDS} for a in attempts],
        "timeline": timeline,
    }


def describe(entry: dict[str, Any]) -> str:
    """One timeline entry as a line of text: its reason, message and the interesting data."""
    data = entry["data"]
    parts = [entry["reason"] or ""]
    if "from" in data and "to" in data:
        parts.append(f"{data['from']} → {data['to']}")
    for key in ("attempt", "result", "decline_code", "due", "template", "to"):
        if data.get(key) is not None:
            parts.append(f"{key}={data[key]}")
    if entry["message"] and entry["message"] != entry["reason"]:
        parts.append(entry["message"])
    return "  ".join(p for p in parts if p)


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""
