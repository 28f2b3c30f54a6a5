"""Reading Stripe's answers: intents and errors into charge results and declines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dunning.errors import GatewayUnavailable
from dunning.gateways.base import ChargeResult, Decline
from dunning.gateways.stripe.http import refused

ATTEMPT_KEY = "idempotency_key"
AUTH_REQUIRED = "authentication_required"
# Error codes meaning "the customer must authenticate", whatever the object that failed.
NEEDS_AUTH_CODES = frozenset({AUTH_REQUIRED, "invoice_payment_intent_requires_action"})
# Intent states that are not an answer yet: the charge may still go either way.
UNSETTLED = frozenset({"processing", "requires_capture", "requires_confirmation"})


def text(obj: Any, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, str) and value else None


def ref(obj: Any, key: str) -> str | None:
    """The id of a field that is either an id or an expanded object."""
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return text(value, "id") if isinstance(value, Mapping) else text(obj, key)


def decline(error: Any) -> Decline:
    """A decline from a Stripe error object (``error`` or ``last_payment_error``)."""
    code = text(error, "code")
    return Decline(
        decline_code=text(error, "decline_code") or code,
        network_code=text(error, "network_decline_code"),
        advice_code=text(error, "advice_code"),
        network_advice_code=text(error, "network_advice_code"),
    )


def intent_result(intent: Mapping[str, Any]) -> ChargeResult:
    """The answer a PaymentIntent gives; ``GatewayUnavailable`` while it is not settled."""
    status, pi_id = text(intent, "status"), text(intent, "id")
    if status == "succeeded":
        return ChargeResult("succeeded", charge_id=pi_id)
    if status in UNSETTLED or status is None:
        raise GatewayUnavailable(
            f"stripe payment intent {pi_id} is {status}: outcome not known yet"
        )
    if status == "requires_action":
        return ChargeResult("declined", pi_id, Decline(decline_code=AUTH_REQUIRED))
    error = intent.get("last_payment_error")
    found = decline(error) if isinstance(error, Mapping) else Decline(decline_code=status)
    return ChargeResult("declined", charge_id=pi_id, decline=found)


def card_error(status: int, body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The error object of a decline; any other failure raises a permanent error."""
    error = body.get("error")
    if isinstance(error, Mapping) and (
        text(error, "type") == "card_error" or text(error, "code") in NEEDS_AUTH_CODES
    ):
        if text(error, "code") == "invoice_payment_intent_requires_action":
            return {**error, "code": AUTH_REQUIRED}
        return error
    raise refused(status, body)


def declined(status: int, body: Mapping[str, Any]) -> ChargeResult:
    """The charge result of a refused create or pay (a permanent error when not a decline)."""
    error = card_error(status, body)
    return ChargeResult("declined", ref(error, "payment_intent"), decline(error))
