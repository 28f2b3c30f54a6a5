"""Builders for policy tests: attempts and retry states with readable defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dunning.policy.types import AttemptRecord, RetryState

T0 = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)


def attempt(at: datetime, **kw: Any) -> AttemptRecord:
    """A declined merchant attempt on pm_1 (Visa, 12500) unless told otherwise."""
    fields: dict[str, Any] = {
        "invoice_id": "in_1",
        "payment_method_id": "pm_1",
        "network": "visa",
        "amount": 12500,
        "initiator": "merchant",
        "status": "declined",
        "decline_code": "insufficient_funds",
        "network_code": "51",
    }
    fields.update(kw)
    return AttemptRecord(at=at, **fields)


def state(attempts: tuple[AttemptRecord, ...], **kw: Any) -> RetryState:
    """An open invoice in_1 on pm_1 whose card history is its own attempts unless told."""
    fields: dict[str, Any] = {
        "invoice_id": "in_1",
        "first_failed_at": attempts[0].at if attempts else T0,
        "plan": "pro-monthly",
        "interval": "month",
        "customer_timezone": "Europe/Copenhagen",
        "payment_method_id": "pm_1",
        "network": "visa",
        "amount": 12500,
        "invoice_attempts": attempts,
        "card_attempts": tuple(a for a in attempts if a.payment_method_id == "pm_1"),
    }
    fields.update(kw)
    return RetryState(**fields)
