"""Realistic sample contexts, one per email kind, for previews and tests."""

from __future__ import annotations

from typing import Any

from dunning.mail.render import check_kind

_CARD = {"network": "visa", "last4": "4242", "exp_month": 3, "exp_year": 2026}
_NEW_CARD = {"network": "mastercard", "last4": "4444", "exp_month": 11, "exp_year": 2029}
_URL = "https://billing.example.com/update/SAMPLE-TOKEN"

_BASE: dict[str, Any] = {
    "customer_name": "Ana Jensen",
    "timezone": "Europe/Copenhagen",
    "plan": "Pro",
    "amount": 12500,
    "currency": "EUR",
    "card": _CARD,
    "new_card": None,
    "update_url": _URL,
    # 23:30 UTC is already the next day in Copenhagen: previews show the customer's day
    "next_attempt_at": "2025-03-03T23:30:00+00:00",
    "suspend_at": "2025-03-17T09:00:00+00:00",
    "paid_at": None,
    "invoice_id": "inv_1001",
    "expires_on": None,
}

_BY_KIND: dict[str, dict[str, Any]] = {
    "payment_failed": {},
    "action_required": {"next_attempt_at": None},
    "payment_retry_failed": {"next_attempt_at": "2025-03-08T10:00:00+00:00"},
    "final_notice": {"next_attempt_at": "2025-03-14T10:00:00+00:00"},
    "subscription_suspended": {"next_attempt_at": None, "suspend_at": "2025-03-17T09:00:00Z"},
    "payment_recovered": {
        "next_attempt_at": None,
        "suspend_at": None,
        "update_url": None,
        "paid_at": "2025-03-05T08:15:00+00:00",
    },
    "card_updated": {
        "next_attempt_at": None,
        "suspend_at": None,
        "update_url": None,
        "new_card": _NEW_CARD,
    },
    "card_expiring": {
        "next_attempt_at": None,
        "suspend_at": None,
        "invoice_id": None,
        "expires_on": "2026-03-31",
    },
}


def sample_context(kind: str) -> dict[str, Any]:
    """A full render context for ``kind`` with realistic values (a fresh copy each call)."""
    check_kind(kind)
    context = {**_BASE, **_BY_KIND[kind]}
    for key in ("card", "new_card"):
        if context[key] is not None:
            context[key] = dict(context[key])
    return context
