"""Gateway webhook payloads as the providers send them, small enough to read in a test."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal


def stripe_invoice_event(
    kind: str = "invoice.payment_failed",
    *,
    shape: Literal["basil", "legacy"] = "basil",
    event_id: str = "evt_1",
    invoice: str = "in_1",
    subscription: str = "sub_1",
    customer: str = "cus_1",
    email: str = "jenny@example.com",
    name: str = "Jenny Rosen",
    amount: int = 1900,
    created: datetime,
    decline_code: str = "insufficient_funds",
    card: str = "pm_old_1",
) -> dict[str, Any]:
    """An ``invoice.*`` event in the API shape since 2025-03-31 (basil) or before (legacy)."""
    invoice_obj: dict[str, Any] = {
        "id": invoice,
        "object": "invoice",
        "amount_due": amount,
        "amount_paid": amount if kind == "invoice.paid" else 0,
        "currency": "eur",
        "customer": customer,
        "customer_email": email,
        "customer_name": name,
        "status": "paid" if kind == "invoice.paid" else "open",
        "attempt_count": 1,
        "payment_intent": {
            "id": "pi_" + invoice,
            "object": "payment_intent",
            "status": "requires_payment_method",
            "metadata": {},
            "last_payment_error": {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "network_decline_code": "51",
                "payment_method": {
                    "id": card,
                    "object": "payment_method",
                    "type": "card",
                    "card": {"brand": "visa", "last4": "0341", "exp_month": 4, "exp_year": 2026},
                },
            },
        },
    }
    if shape == "basil":
        invoice_obj["parent"] = {
            "type": "subscription_details",
            "subscription_details": {"metadata": {}, "subscription": subscription},
        }
    else:
        invoice_obj["subscription"] = subscription
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-03-31.basil" if shape == "basil" else "2024-06-20",
        "created": int(created.timestamp()),
        "data": {"object": invoice_obj},
        "livemode": False,
        "type": kind,
    }


def stripe_other_event(kind: str, *, event_id: str, created: datetime) -> dict[str, Any]:
    """A well-formed event of a type the pipeline does not act on."""
    return {
        "id": event_id,
        "object": "event",
        "created": int(created.timestamp()),
        "data": {"object": {"id": "cus_9", "object": "customer"}},
        "type": kind,
    }


def quickpay_recurring(
    *,
    payment_id: int = 510002,
    op_id: int = 1,
    order_id: str = "in_qp_1",
    subscription_id: str = "sub_cus_1",
    customer: str = "cus_1",
    amount: int = 12500,
    code: str = "40000",
    aq_code: str = "51",
) -> dict[str, Any]:
    """A Quickpay callback for a recurring payment of a subscription (rejected by default)."""
    return {
        "id": payment_id,
        "order_id": order_id,
        "accepted": code == "20000",
        "type": "Payment",
        "variables": {"customer_id": customer, "subscription_id": subscription_id},
        "currency": "EUR",
        "state": "processed",
        "metadata": {
            "type": "card",
            "brand": "visa",
            "last4": "0008",
            "exp_month": 3,
            "exp_year": 2028,
        },
        "operations": [
            {
                "id": op_id,
                "type": "recurring",
                "amount": amount,
                "pending": False,
                "qp_status_code": code,
                "qp_status_msg": "Rejected By Acquirer",
                "aq_status_code": aq_code,
                "aq_status_msg": "Insufficient funds",
                "created_at": "2026-03-02T09:59:00Z",
            }
        ],
        "created_at": "2026-03-02T09:58:00Z",
        "updated_at": "2026-03-02T09:59:05Z",
    }
