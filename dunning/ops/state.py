"""A customer's or an invoice's dunning state as the merchant's application reads it (the
``/ops/api`` routes): enough to show an in-app banner ("your payment failed, update your
card") without knowing how the pipeline works.

Amounts are in minor units with their currency; times are ISO 8601 in UTC. A card appears as
brand, last four and expiry, never its token.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from dunning.mail.formatting import money
from dunning.model import OWED, CardStatus, InvoiceStatus
from dunning.policy.config import PolicyBook
from dunning.policy.days import window_end
from dunning.policy.types import Verdict
from dunning.services.case import Case, load_cases
from dunning.store import invoices, rows
from dunning.store.accounts_view import subscriptions_of
from dunning.store.tables import customers, payment_methods

# A last decline with one of these verdicts waits for a new card: retrying cannot help.
_NEEDS_CARD = frozenset({Verdict.needs_new_card.value, Verdict.never.value})


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _card(row: Mapping[Any, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "brand": row["network"],
        "last4": row["last4"],
        "exp_month": row["exp_month"],
        "exp_year": row["exp_year"],
    }


def _card_unusable(card: Mapping[Any, Any] | None, now: datetime) -> bool:
    """No card, a removed or blocked one, or one past its expiry month."""
    if card is None or card["status"] != CardStatus.active or card["blocked_reason"]:
        return True
    return (int(card["exp_year"]), int(card["exp_month"])) < (now.year, now.month)


def _invoice(conn: Connection, case: Case, book: PolicyBook, now: datetime) -> dict[str, Any]:
    inv, cust = case.invoice, case.customer
    card_id = inv["retry_payment_method_id"] or case.subscription["payment_method_id"]
    card = rows.find(conn, payment_methods, card_id) if card_id else None
    owed = inv["status"] in OWED
    failed = inv["first_failed_at"]
    paused = bool(inv["paused"]) or bool(cust.get("dunning_paused"))
    suspends = None
    if inv["status"] == InvoiceStatus.open and failed is not None:
        at = window_end(failed, case.timezone, case.policy(book))
        suspends = at if at > now else None
    return {
        "invoice_id": inv["id"],
        "customer_id": inv["customer_id"],
        "subscription_id": inv["subscription_id"],
        "status": inv["status"],
        "subscription_status": case.subscription["status"],
        "past_due": owed and failed is not None,
        "amount": inv["amount"],
        "amount_owed": inv["amount"] if owed else 0,
        "currency": inv["currency"],
        "amount_owed_text": money(inv["amount"] if owed else 0, inv["currency"], "en"),
        "days_past_due": (now - failed).days if owed and failed is not None else 0,
        "first_failed_at": _iso(failed),
        "failed_attempts": inv["attempt_count"],
        "next_retry_at": _iso(inv["next_attempt_at"]) if owed and not paused else None,
        "suspends_at": _iso(suspends),
        "paused": paused,
        "update_card_needed": owed
        and (inv["last_decline_class"] in _NEEDS_CARD or _card_unusable(card, now)),
        "card": _card(card),
        "paid_at": _iso(inv["paid_at"]),
    }


def invoice_state(
    conn: Connection, book: PolicyBook, invoice_id: str, now: datetime
) -> dict[str, Any]:
    """One invoice's state; :class:`~dunning.errors.NotFound` when it does not exist."""
    case = load_cases(conn, [invoice_id])[invoice_id]
    return _invoice(conn, case, book, now)


def customer_state(
    conn: Connection, book: PolicyBook, customer_id: str, now: datetime
) -> dict[str, Any]:
    """The customer's subscriptions and owed invoices, with the totals a banner needs."""
    cust = rows.get(conn, customers, customer_id)
    ids = invoices.owed_by(conn, customer_id)
    cases = load_cases(conn, ids)
    owed = [_invoice(conn, cases[i], book, now) for i in ids]
    totals: dict[str, int] = {}
    for inv in owed:
        totals[inv["currency"]] = totals.get(inv["currency"], 0) + inv["amount_owed"]
    retries = sorted(i["next_retry_at"] for i in owed if i["next_retry_at"])
    return {
        "customer_id": cust["id"],
        "past_due": any(i["past_due"] for i in owed),
        "paused": bool(cust.get("dunning_paused")),
        "amounts_owed": [
            {"currency": cur, "amount": amount, "text": money(amount, cur, "en")}
            for cur, amount in sorted(totals.items())
        ],
        "days_past_due": max((i["days_past_due"] for i in owed), default=0),
        "next_retry_at": retries[0] if retries else None,
        "update_card_needed": any(i["update_card_needed"] for i in owed),
        "subscriptions": [
            {"subscription_id": s["id"], "plan": s["plan"], "status": s["status"]}
            for s in subscriptions_of(conn, customer_id)
        ],
        "invoices": owed,
    }
