"""Calling the gateway for prepared charges, each under its idempotency key.

The resolver looks an attempt up ``unknown_after_s`` after its stamp (``created_at``), so an
attempt is stamped again right before its own call whenever its stamp is more than
:data:`RESTAMP_S` old: a call starts at most that long after its stamp and, bounded by the
gateway (``gateway_timeout_s`` for the whole call), ends before the resolver may look. An
attempt the resolver settled meanwhile is not stamped, and not sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config.settings import CALL_START_MARGIN_S
from dunning.errors import GatewayUnavailable
from dunning.gateways.base import ChargeRequest, ChargeResult
from dunning.model import Initiator
from dunning.ports import Pipeline
from dunning.services.case import Case
from dunning.store import attempts

log = logging.getLogger(__name__)

# Settings refuse an unknown_after_s that leaves less than this beside the gateway's bound.
RESTAMP_S = CALL_START_MARGIN_S

Answer = ChargeResult | GatewayUnavailable


@dataclass(frozen=True, slots=True)
class PreparedCharge:
    """An attempt written ``pending`` and not yet sent: everything its gateway call needs."""

    key: str
    invoice_id: str
    attempt_no: int
    customer_id: str
    payment_method_id: str
    token: str
    amount: int
    currency: str
    initiator: Initiator
    reason: str
    # The customer and the invoice as the gateway knows them (see :func:`gateway_refs`).
    customer_ref: str
    invoice_ref: str | None = None


def gateway_refs(
    gateway: str, customer: Mapping[Any, Any], invoice: Mapping[Any, Any] | None = None
) -> tuple[str | None, str | None]:
    """Our customer and invoice as ``gateway`` knows them. Stripe has its own ids, mapped in
    ``stripe_customer_id`` and ``stripe_invoice_id`` (``None`` where Stripe has no such
    object); every other gateway is given our customer id and no invoice."""
    if gateway != "stripe":
        return str(customer["id"]), None
    stripe_invoice = invoice.get("stripe_invoice_id") if invoice is not None else None
    return customer.get("stripe_customer_id"), stripe_invoice


def unknown_at_gateway(gateway: str, case: Case | None) -> str | None:
    """``failed`` when the gateway knows neither the case's customer nor its invoice: it
    cannot be charged (a Stripe customer id is mapped, never assumed equal to ours)."""
    if case is None or gateway_refs(gateway, case.customer, case.invoice) != (None, None):
        return None
    log.error(
        "invoice %s: customer %s has no %s customer id (customers.stripe_customer_id)",
        case.id,
        case.customer["id"],
        gateway,
    )
    return "failed"


def request_for(charge: PreparedCharge) -> ChargeRequest:
    """The gateway request of a prepared charge, under its idempotency key: a Stripe Billing
    invoice is paid through the invoice."""
    return ChargeRequest(
        customer_id=charge.customer_ref,
        token=charge.token,
        amount=charge.amount,
        currency=charge.currency,
        idempotency_key=charge.key,
        initiator=charge.initiator,
        metadata={"invoice": charge.invoice_id, "idempotency_key": charge.key},
        invoice_ref=charge.invoice_ref,
    )


def call(c: Pipeline, charge: PreparedCharge) -> Answer:
    """One gateway call; no answer comes back as the :class:`GatewayUnavailable` it raised."""
    try:
        return c.gateway.charge(request_for(charge))
    except GatewayUnavailable as exc:
        log.warning(
            "charge %s for invoice %s: outcome unknown (%s)", charge.key, charge.invoice_id, exc
        )
        return exc


def send_all(c: Pipeline, charges: Sequence[PreparedCharge]) -> dict[str, Answer]:
    """Call the gateway for each charge in turn, each stamped at most :data:`RESTAMP_S` before
    its call; returns the answers by key (a charge settled meanwhile is left out)."""
    return {charge.key: call(c, charge) for charge in _stamped(c, charges)}


def _stamped(c: Pipeline, charges: Sequence[PreparedCharge]) -> Iterator[PreparedCharge]:
    stamped_at, sendable = None, set[str]()
    for i, charge in enumerate(charges):
        at = c.clock.now()
        if stamped_at is None or (at - stamped_at).total_seconds() > RESTAMP_S:
            # No connection is held across the calls: the gateway may need one of its own.
            with c.engine.begin() as conn:
                sendable = attempts.stamp(conn, [ch.key for ch in charges[i:]], at)
            stamped_at = at
        if charge.key in sendable:
            yield charge
