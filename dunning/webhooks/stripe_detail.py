"""Reading the parts of Stripe objects that several event types share.

Declines, cards, our idempotency key and the subscription live in different places depending on
the object (invoice, charge, payment intent) and on the API version; these helpers know where.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dunning.policy.types import Decline
from dunning.webhooks.events import CardInfo, CustomerInfo
from dunning.webhooks.fields import Reader, network_name

ATTEMPT_KEY = "idempotency_key"


def merge(*declines: Decline | None) -> Decline:
    """Field by field, the first source that knows a value wins."""
    present = [d for d in declines if d is not None]

    def first(name: str) -> str | None:
        return next((getattr(d, name) for d in present if getattr(d, name)), None)

    return Decline(
        decline_code=first("decline_code"),
        network_code=first("network_code"),
        advice_code=first("advice_code"),
        network_advice_code=first("network_advice_code"),
    )


def intent_decline(intent: Reader | None) -> Decline | None:
    error = intent.opt_obj("last_payment_error") if intent else None
    if error is None:
        return None
    return Decline(
        decline_code=error.opt_text("decline_code") or error.opt_text("code"),
        network_code=error.opt_text("network_decline_code"),
        advice_code=error.opt_text("advice_code"),
        network_advice_code=error.opt_text("network_advice_code"),
    )


def charge_decline(charge: Reader | None) -> Decline | None:
    if charge is None:
        return None
    outcome = charge.opt_obj("outcome")
    reason = outcome.opt_text("reason") if outcome else None
    return Decline(
        decline_code=reason or charge.opt_text("failure_code"),
        network_code=outcome.opt_text("network_decline_code") if outcome else None,
        advice_code=outcome.opt_text("advice_code") if outcome else None,
        network_advice_code=outcome.opt_text("network_advice_code") if outcome else None,
    )


def card_info(card: Reader | None, ref: str | None) -> CardInfo | None:
    if card is None:
        return None
    return CardInfo(
        ref=ref,
        network=network_name(card.opt_text("brand")),
        last4=card.opt_text("last4"),
        exp_month=card.opt_integer("exp_month"),
        exp_year=card.opt_integer("exp_year"),
    )


def intent_card(intent: Reader | None) -> CardInfo | None:
    error = intent.opt_obj("last_payment_error") if intent else None
    method = error.expanded("payment_method") if error else None
    if method is None and intent is not None:
        method = intent.expanded("payment_method")
    return card_info(method.opt_obj("card"), method.opt_text("id")) if method else None


def charge_card(charge: Reader | None) -> CardInfo | None:
    details = charge.opt_obj("payment_method_details") if charge else None
    if charge is None or details is None:
        return None
    return card_info(details.opt_obj("card"), charge.opt_ref("payment_method"))


def attempt_key(*objs: Reader | None) -> str | None:
    for obj in objs:
        metadata = obj.opt_obj("metadata") if obj else None
        key = metadata.opt_text(ATTEMPT_KEY) if metadata else None
        if key:
            return key
    return None


def customer_info(obj: Reader, ref: str | None) -> CustomerInfo | None:
    if ref is None:
        return None
    expanded = obj.expanded("customer")
    if expanded is not None:
        return CustomerInfo(ref, expanded.opt_text("email"), expanded.opt_text("name"))
    return CustomerInfo(ref, obj.opt_text("customer_email"), obj.opt_text("customer_name"))


def invoice_subscription(inv: Reader) -> str | None:
    parent = inv.opt_obj("parent")
    details = parent.opt_obj("subscription_details") if parent else None
    nested = details.opt_ref("subscription") if details else None
    return inv.opt_ref("subscription") or nested


def invoice_payment(inv: Reader) -> tuple[Reader | None, Reader | None]:
    """The expanded payment intent and charge of an invoice, whichever API shape it has."""
    intent, charge = inv.expanded("payment_intent"), inv.expanded("charge")
    payments = inv.opt_obj("payments")
    for i, item in enumerate(payments.seq("data") if payments else []):
        payment = Reader(item, f"{inv.path}.payments.data[{i}]").opt_obj("payment")
        if payment is not None:
            intent = intent or payment.expanded("payment_intent")
            charge = charge or payment.expanded("charge")
    return intent, charge


@dataclass(frozen=True, slots=True)
class PlanSummary:
    plan: str | None
    amount: int | None  # the sum over items; None when any item has no fixed price
    currency: str | None
    period_end: datetime | None


def plan_summary(sub: Reader) -> PlanSummary:
    """Plan, amount and period end of a subscription, from its items (or the legacy ``plan``).

    Since API 2025-03-31 ``current_period_end`` sits on each item instead of the subscription.
    """
    items = sub.opt_obj("items")
    rows = [
        Reader(x, f"{sub.path}.items.data[{i}]")
        for i, x in enumerate(items.seq("data") if items else [])
    ]
    plan: str | None = None
    currency: str | None = None
    total: int | None = 0 if rows else None
    for row in rows:
        price = row.opt_obj("price") or row.opt_obj("plan")
        unit = None
        if price is not None:
            unit = price.opt_integer("unit_amount" if price.has("unit_amount") else "amount")
            if plan is None:
                plan, currency = price.opt_text("id"), price.opt_currency("currency")
        quantity = row.opt_integer("quantity")
        if total is not None and unit is not None:
            total += unit * (1 if quantity is None else quantity)
        else:
            total = None
    period_end = sub.opt_unix_time("current_period_end")
    if period_end is None and rows:
        period_end = rows[0].opt_unix_time("current_period_end")
    return PlanSummary(plan, total, currency, period_end)
