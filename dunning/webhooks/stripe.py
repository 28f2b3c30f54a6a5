"""Stripe webhook events -> internal events.

Both invoice shapes are read: the subscription at top-level ``subscription`` (API versions
before 2025-03-31) and at ``parent.subscription_details.subscription`` (since). The decline
detail is never on the invoice itself: it comes from an expanded ``payment_intent``
(``last_payment_error``) or ``charge`` (``outcome``), including the newer ``payments`` list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dunning.model import CARD_PAGE_SOURCE
from dunning.policy.types import Decline
from dunning.webhooks.events import (
    ActionRequired,
    CardAttached,
    CardAutoUpdated,
    CardConfirmed,
    CardDetached,
    CustomerChanged,
    Event,
    EventMeta,
    Ignored,
    InvoicePaid,
    MalformedEvent,
    PaymentFailed,
    SubscriptionChanged,
)
from dunning.webhooks.fields import Reader, network_name
from dunning.webhooks.stripe_detail import (
    attempt_key,
    card_info,
    charge_card,
    charge_decline,
    customer_info,
    intent_card,
    intent_decline,
    invoice_payment,
    invoice_subscription,
    merge,
    plan_summary,
)
from dunning.webhooks.stripe_objects import (
    customer_record,
    invoice_billing,
    subscription_record,
)

PROVIDER = "stripe"
MAX_EVENT_ID_CHARS = 128
MAX_TYPE_CHARS = 64


def stripe_envelope(payload: Mapping[str, Any]) -> tuple[str, str]:
    """``(event_id, type)`` of an event, checked against the ``webhook_events`` column sizes."""
    env = Reader(payload)
    event_id, kind = env.text("id"), env.text("type")
    if len(event_id) > MAX_EVENT_ID_CHARS:
        raise MalformedEvent(f"id: longer than {MAX_EVENT_ID_CHARS} characters")
    if len(kind) > MAX_TYPE_CHARS:
        raise MalformedEvent(f"type: longer than {MAX_TYPE_CHARS} characters")
    return event_id, kind


def parse_stripe(payload: Mapping[str, Any]) -> list[Event]:
    """Turn one Stripe event into internal events; unknown types become ``Ignored``.

    Raises :class:`MalformedEvent` naming the field when the payload lacks one or has the
    wrong type; never ``KeyError`` or ``TypeError``.
    """
    event_id, kind = stripe_envelope(payload)
    env = Reader(payload)
    meta = EventMeta(provider=PROVIDER, event_id=event_id, occurred_at=env.unix_time("created"))
    data = env.obj("data")
    obj = data.obj("object")
    handler = _HANDLERS.get(kind)
    if handler is None:
        return [Ignored(**meta, type=kind)]
    return [handler(kind, obj, data, meta)]


# -- handlers ----------------------------------------------------------------------------------

Handler = Callable[[str, Reader, Reader, EventMeta], Event]


def _invoice_failed(kind: str, inv: Reader, data: Reader, meta: EventMeta) -> Event:
    intent, charge = invoice_payment(inv)
    customer_ref = inv.opt_ref("customer")
    return PaymentFailed(
        **meta,
        customer_ref=customer_ref,
        subscription_ref=invoice_subscription(inv),
        invoice_ref=inv.text("id"),
        amount=inv.amount("amount_due"),
        currency=inv.currency("currency"),
        decline=merge(intent_decline(intent), charge_decline(charge)),
        attempt_key=attempt_key(intent, charge, inv),
        customer=customer_info(inv, customer_ref),
        card=intent_card(intent) or charge_card(charge),
        billing=invoice_billing(inv),
    )


def _invoice_paid(kind: str, inv: Reader, data: Reader, meta: EventMeta) -> Event:
    intent, charge = invoice_payment(inv)
    return InvoicePaid(
        **meta,
        invoice_ref=inv.text("id"),
        subscription_ref=invoice_subscription(inv),
        customer_ref=inv.opt_ref("customer"),
        amount=inv.amount("amount_paid"),
        currency=inv.currency("currency"),
        attempt_key=attempt_key(intent, charge, inv),
    )


def _invoice_action(kind: str, inv: Reader, data: Reader, meta: EventMeta) -> Event:
    intent, charge = invoice_payment(inv)
    return ActionRequired(
        **meta,
        invoice_ref=inv.text("id"),
        subscription_ref=invoice_subscription(inv),
        customer_ref=inv.opt_ref("customer"),
        amount=inv.amount("amount_due"),
        currency=inv.currency("currency"),
        decline=merge(
            intent_decline(intent),
            charge_decline(charge),
            Decline(decline_code="authentication_required"),
        ),
        billing=invoice_billing(inv),
    )


def _charge_failed(kind: str, charge: Reader, data: Reader, meta: EventMeta) -> Event:
    customer_ref = charge.opt_ref("customer")
    return PaymentFailed(
        **meta,
        customer_ref=customer_ref,
        subscription_ref=None,
        invoice_ref=charge.opt_ref("invoice"),
        amount=charge.amount("amount"),
        currency=charge.currency("currency"),
        decline=merge(charge_decline(charge)),
        attempt_key=attempt_key(charge),
        customer=customer_info(charge, customer_ref) if charge.expanded("customer") else None,
        card=charge_card(charge),
    )


def _intent_failed(kind: str, intent: Reader, data: Reader, meta: EventMeta) -> Event:
    customer_ref = intent.opt_ref("customer")
    charge = intent.expanded("latest_charge")
    return PaymentFailed(
        **meta,
        customer_ref=customer_ref,
        subscription_ref=None,
        invoice_ref=intent.opt_ref("invoice"),
        amount=intent.amount("amount"),
        currency=intent.currency("currency"),
        decline=merge(intent_decline(intent), charge_decline(charge)),
        attempt_key=attempt_key(intent),
        customer=customer_info(intent, customer_ref) if intent.expanded("customer") else None,
        card=intent_card(intent) or charge_card(charge),
    )


def _subscription(kind: str, sub: Reader, data: Reader, meta: EventMeta) -> Event:
    status = sub.text("status")
    summary = plan_summary(sub)
    return SubscriptionChanged(
        **meta,
        subscription_ref=sub.text("id"),
        customer_ref=sub.opt_ref("customer"),
        status=status,
        cancelled=kind.endswith(".deleted") or status == "canceled",
        plan=summary.plan,
        amount=summary.amount,
        currency=summary.currency,
        current_period_end=summary.period_end,
        record=subscription_record(sub.data),
    )


def _customer(kind: str, cus: Reader, data: Reader, meta: EventMeta) -> Event:
    return CustomerChanged(**meta, customer=customer_record(cus.data))


def _method_updated(kind: str, pm: Reader, data: Reader, meta: EventMeta) -> Event:
    card = pm.obj("card")
    return CardAutoUpdated(
        **meta,
        payment_method_ref=pm.text("id"),
        customer_ref=pm.opt_ref("customer"),
        last4=card.opt_text("last4"),
        exp_month=card.opt_integer("exp_month"),
        exp_year=card.opt_integer("exp_year"),
        network=network_name(card.opt_text("brand")),
    )


def _method_attached(kind: str, pm: Reader, data: Reader, meta: EventMeta) -> Event:
    ref = pm.text("id")
    card = card_info(pm.opt_obj("card"), ref)
    if card is None:  # not a card (a bank debit, a wallet): nothing the card pipeline can use
        return Ignored(**meta, type=kind)
    return CardAttached(
        **meta, payment_method_ref=ref, customer_ref=pm.opt_ref("customer"), card=card
    )


def _method_detached(kind: str, pm: Reader, data: Reader, meta: EventMeta) -> Event:
    # After a detach the object's customer is null; the former one is in previous_attributes.
    previous = data.opt_obj("previous_attributes")
    customer_ref = pm.opt_ref("customer") or (previous.opt_ref("customer") if previous else None)
    return CardDetached(**meta, payment_method_ref=pm.text("id"), customer_ref=customer_ref)


def _setup_succeeded(kind: str, setup: Reader, data: Reader, meta: EventMeta) -> Event:
    metadata = setup.opt_obj("metadata")
    source = metadata.opt_text("source") if metadata else None
    method, customer = setup.opt_ref("payment_method"), setup.opt_ref("customer")
    if source != CARD_PAGE_SOURCE or method is None or customer is None:
        return Ignored(**meta, type=kind)  # not a card check of the card page
    return CardConfirmed(
        **meta, setup_ref=setup.text("id"), payment_method_ref=method, customer_ref=customer
    )


_HANDLERS: dict[str, Handler] = {
    "invoice.payment_failed": _invoice_failed,
    "invoice.paid": _invoice_paid,
    "invoice.payment_action_required": _invoice_action,
    "charge.failed": _charge_failed,
    "payment_intent.payment_failed": _intent_failed,
    "customer.created": _customer,
    "customer.updated": _customer,
    "customer.subscription.created": _subscription,
    "customer.subscription.updated": _subscription,
    "customer.subscription.deleted": _subscription,
    "payment_method.automatically_updated": _method_updated,
    "payment_method.attached": _method_attached,
    "payment_method.detached": _method_detached,
    "setup_intent.succeeded": _setup_succeeded,
}
