"""Quickpay callbacks -> internal events.

A callback body is the payment or subscription resource after the change, with its
``operations``. The newest finished operation of a deciding type is the news; its
``qp_status_code`` says what happened (docs/declines-and-network-rules.md §4).
Quickpay sends no event id, so the event id is ``"<payment id>:<operation id>"``. An operation
that is still pending keeps its id when it finishes, so a pending one gets ``":pending"``
appended: deduplicating it must not swallow the final callback.

Payments made from a subscription (``recurring``) carry ``subscription_id``. A subscription's
own callbacks are about the stored card: an approved ``authorize`` is a card attached, an
approved ``cancel`` a card removed; their event ids start with ``s`` because subscription and
payment ids are separate series.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from dunning.policy.types import Decline
from dunning.webhooks.events import (
    ActionRequired,
    CardAttached,
    CardDetached,
    CardInfo,
    Event,
    EventMeta,
    Ignored,
    InvoicePaid,
    MalformedEvent,
    PaymentFailed,
)
from dunning.webhooks.fields import Reader, network_name

PROVIDER = "quickpay"
APPROVED = "20000"
REJECTED = "40000"
GATEWAY_ERRORS = frozenset({"50000", "50300"})  # transient: not the card's fault
GATEWAY_ERROR_CODE = "50000"
NEEDS_CUSTOMER = frozenset({"30100", "30101"})  # 3-D Secure / SCA
DEAD_CREDENTIAL = frozenset({"41000", "42300"})
PAYMENT_OPS = frozenset({"recurring", "authorize", "capture"})
SUBSCRIPTION_OPS = frozenset({"authorize", "cancel"})
ATTEMPT_KEY = "idempotency_key"


class _Money(TypedDict):
    invoice_ref: str | None
    subscription_ref: str | None
    customer_ref: str | None
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class _Op:
    reader: Reader
    id: int
    type: str
    pending: bool


@dataclass(frozen=True, slots=True)
class _Decision:
    resource: str  # payment | subscription | another resource type, lower-case
    op: _Op | None  # the finished deciding operation; None: nothing to act on
    event_id: str
    type: str


def _operations(r: Reader) -> list[_Op]:
    ops = []
    for i, raw in enumerate(r.seq("operations")):
        op = Reader(raw, f"operations[{i}]")
        ops.append(_Op(op, op.integer("id"), op.text("type")[:24], op.flag("pending")))
    return ops


def _decide(r: Reader) -> _Decision:
    pid = r.text("id", numbers=True)
    resource = (r.opt_text("type") or "Payment").lower()[:24]
    prefix = "s" if resource == "subscription" else ""
    ops = _operations(r)
    deciding = PAYMENT_OPS if resource == "payment" else SUBSCRIPTION_OPS
    relevant = [o for o in ops if o.type in deciding]
    finished = [o for o in relevant if not o.pending]
    if resource in ("payment", "subscription") and finished:
        op = max(finished, key=lambda o: o.id)
        return _Decision(resource, op, f"{prefix}{pid}:{op.id}", f"{resource}.{op.type}")
    newest = max(relevant or ops, key=lambda o: o.id, default=None)
    if newest is None:
        return _Decision(resource, None, f"{prefix}{pid}:0", f"{resource}.none")
    suffix = "pending" if newest.pending else ""
    return _Decision(
        resource,
        None,
        f"{prefix}{pid}:{newest.id}" + (f":{suffix}" if suffix else ""),
        f"{resource}.{newest.type}" + (f".{suffix}" if suffix else ""),
    )


def quickpay_envelope(payload: Mapping[str, Any]) -> tuple[str, str]:
    """``(event_id, type)`` of a callback, for storing and deduplicating it before parsing."""
    decision = _decide(Reader(payload))
    return decision.event_id, decision.type


def parse_quickpay(
    payload: Mapping[str, Any], *, received_at: datetime | None = None
) -> list[Event]:
    """Turn one Quickpay callback into internal events; anything else becomes ``Ignored``.

    ``occurred_at`` is the deciding operation's ``created_at``, else the resource's
    ``updated_at``, else ``received_at`` (Quickpay bodies do not always carry times).
    Raises :class:`MalformedEvent` naming the field when the payload is unusable.
    """
    r = Reader(payload)
    decision = _decide(r)
    when = (decision.op.reader.iso_time("created_at") if decision.op else None) or (
        r.iso_time("updated_at") or received_at
    )
    if when is None:
        raise MalformedEvent("updated_at: missing and no receive time given")
    meta = EventMeta(provider=PROVIDER, event_id=decision.event_id, occurred_at=when)
    if decision.op is None:
        return [Ignored(**meta, type=decision.type)]
    if decision.resource == "subscription":
        return [_subscription_event(r, decision.op, meta)]
    return [_payment_event(r, decision.op, meta)]


def _variables(r: Reader) -> Reader | None:
    # Quickpay sends an empty list, not an object, when a resource has no variables.
    raw = r.raw("variables")
    return None if raw is None or raw == [] else r.obj("variables")


def _card(r: Reader, ref: str | None) -> CardInfo | None:
    meta = r.opt_obj("metadata")
    if meta is None or not meta.has("last4"):
        return None
    return CardInfo(
        ref=ref,
        network=network_name(meta.opt_text("brand")),
        last4=meta.opt_text("last4"),
        exp_month=meta.opt_integer("exp_month"),
        exp_year=meta.opt_integer("exp_year"),
    )


def _payment_event(r: Reader, op: _Op, meta: EventMeta) -> Event:
    code = op.reader.text("qp_status_code", numbers=True)
    variables = _variables(r)
    subscription_ref = r.opt_text("subscription_id", numbers=True) or (
        variables.opt_text("subscription_id") if variables else None
    )
    common = _Money(
        invoice_ref=r.opt_text("order_id"),
        subscription_ref=subscription_ref,
        customer_ref=variables.opt_text("customer_id") if variables else None,
        amount=op.reader.amount("amount"),
        currency=r.currency("currency"),
    )
    attempt_key = variables.opt_text(ATTEMPT_KEY) if variables else None
    if code == APPROVED:
        return InvoicePaid(**meta, **common, attempt_key=attempt_key)
    if code in NEEDS_CUSTOMER:
        return ActionRequired(**meta, **common, decline=Decline(decline_code=code))
    if code in GATEWAY_ERRORS:
        # Not a decline: the policy reads the code as unknown and takes the transient path.
        decline = Decline(decline_code=GATEWAY_ERROR_CODE)
    elif code in DEAD_CREDENTIAL:
        decline = Decline(decline_code=code)
    else:
        decline = Decline(
            decline_code=code, network_code=op.reader.opt_text("aq_status_code", numbers=True)
        )
    return PaymentFailed(
        **meta,
        **common,
        decline=decline,
        attempt_key=attempt_key,
        card=_card(r, subscription_ref),
    )


def _subscription_event(r: Reader, op: _Op, meta: EventMeta) -> Event:
    code = op.reader.text("qp_status_code", numbers=True)
    ref = r.text("id", numbers=True)
    variables = _variables(r)
    customer_ref = variables.opt_text("customer_id") if variables else None
    if code != APPROVED:
        return Ignored(**meta, type=f"subscription.{op.type}.{code[:8]}")
    if op.type == "cancel":
        return CardDetached(**meta, payment_method_ref=ref, customer_ref=customer_ref)
    card = _card(r, ref) or CardInfo(ref, "unknown", None, None, None)
    return CardAttached(**meta, payment_method_ref=ref, customer_ref=customer_ref, card=card)
