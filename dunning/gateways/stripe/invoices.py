"""Paying a Stripe Billing invoice through the invoice, and finding out what such a payment did.

Paying the invoice (``POST /v1/invoices/{id}/pay``) settles Stripe's own record: the invoice is
``paid`` and Stripe stops collecting it, where a separate PaymentIntent would leave it open for
Stripe's retries to charge again. The pay request carries the attempt's idempotency key, so the
same key again replays Stripe's first answer. An invoice's PaymentIntent is Stripe's, without
our metadata, so a lost answer is settled by reading the invoice: ``paid`` means the debt was
collected; still open means no payment of ours went through.
"""

from __future__ import annotations

from urllib.parse import quote

from dunning.errors import GatewayUnavailable
from dunning.gateways.base import ChargeResult
from dunning.gateways.stripe.answers import UNSETTLED, declined, ref, text
from dunning.gateways.stripe.http import Form, StripeHttp, refused


def pay(
    http: StripeHttp,
    invoice_id: str,
    *,
    payment_method: str | None,
    idempotency_key: str,
    off_session: bool,
    deadline: float,
) -> ChargeResult:
    """Pay ``invoice_id`` with ``payment_method`` (the invoice's own when ``None``)."""
    form: Form = {"off_session": "true" if off_session else "false"}
    if payment_method:
        form["payment_method"] = payment_method
    path = f"/v1/invoices/{quote(invoice_id, safe='')}/pay"
    status, body = http.call("POST", path, form, idempotency_key, deadline=deadline)
    if status != 200:
        return declined(status, body)
    state = text(body, "status")
    if state != "paid":
        raise GatewayUnavailable(f"stripe invoice {invoice_id} is {state}, not paid")
    return ChargeResult("succeeded", charge_id=ref(body, "payment_intent") or text(body, "id"))


def find(http: StripeHttp, invoice_id: str, *, deadline: float) -> ChargeResult | None:
    """What paying ``invoice_id`` came to: succeeded when it is paid, ``None`` while it is not
    (nothing was collected); ``GatewayUnavailable`` while its payment is still under way."""
    path = f"/v1/invoices/{quote(invoice_id, safe='')}"
    params = {"expand[]": "payment_intent"}
    status, body = http.call("GET", path, params=params, deadline=deadline)
    if status != 200:
        raise refused(status, body)
    if text(body, "status") == "paid":
        return ChargeResult("succeeded", charge_id=ref(body, "payment_intent") or invoice_id)
    intent = body.get("payment_intent")
    if isinstance(intent, dict) and text(intent, "status") in UNSETTLED:
        raise GatewayUnavailable(f"stripe invoice {invoice_id}: its payment is still under way")
    return None
