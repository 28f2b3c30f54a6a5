"""Stripe as a gateway: off-session PaymentIntents over Stripe's HTTP API, with httpx.

Stripe keeps an idempotency key for at least 24 hours and cannot look a charge up by it, so the
key also goes into the PaymentIntent's ``metadata`` and :meth:`StripeGateway.lookup` lists the
customer's PaymentIntents to find it (docs/webhooks.md §3). A create is never replayed to learn an
outcome. Timeouts, dropped connections, 409, 429 and 5xx raise
:class:`~dunning.errors.GatewayUnavailable`: the outcome is unknown, not a decline.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from dunning.errors import ConfigError, GatewayUnavailable, PermanentError
from dunning.gateways.base import ChargeRequest, ChargeResult, Decline, VerifyResult
from dunning.gateways.cards import mask_pans
from dunning.model import Initiator

if TYPE_CHECKING:
    from config.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.stripe.com"
ATTEMPT_KEY = "idempotency_key"
AUTH_REQUIRED = "authentication_required"
# Error codes meaning "the customer must authenticate", whatever the object that failed.
_NEEDS_AUTH_CODES = frozenset({AUTH_REQUIRED, "invoice_payment_intent_requires_action"})
# A payment method that is already gone: detaching it again is not an error.
_ALREADY_DETACHED = frozenset({"resource_missing", "payment_method_unexpected_state"})
# Intent states that are not an answer yet: the charge may still go either way.
_UNSETTLED = frozenset({"processing", "requires_capture", "requires_confirmation"})

Form = dict[str, str]
# Off-session charges cannot follow a redirect; cards need none (3-D Secure is not a redirect).
_NO_REDIRECTS: Form = {
    "automatic_payment_methods[enabled]": "true",
    "automatic_payment_methods[allow_redirects]": "never",
}


class StripeError(PermanentError):
    """Stripe refused a request for good (bad parameters, a bad key, a missing object)."""

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _text(obj: Any, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, str) and value else None


def _ref(obj: Any, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return _text(value, "id") if isinstance(value, Mapping) else _text(obj, key)


def _decline(error: Any) -> Decline:
    """A decline from a Stripe error object (``error`` or ``last_payment_error``)."""
    code = _text(error, "code")
    return Decline(
        decline_code=_text(error, "decline_code") or code,
        network_code=_text(error, "network_decline_code"),
        advice_code=_text(error, "advice_code"),
        network_advice_code=_text(error, "network_advice_code"),
    )


def _intent_result(intent: Mapping[str, Any]) -> ChargeResult:
    status, pi_id = _text(intent, "status"), _text(intent, "id")
    if status == "succeeded":
        return ChargeResult("succeeded", charge_id=pi_id)
    if status in _UNSETTLED or status is None:
        raise GatewayUnavailable(
            f"stripe payment intent {pi_id} is {status}: outcome not known yet"
        )
    if status == "requires_action":
        return ChargeResult("declined", pi_id, Decline(decline_code=AUTH_REQUIRED))
    error = intent.get("last_payment_error")
    decline = _decline(error) if isinstance(error, Mapping) else Decline(decline_code=status)
    return ChargeResult("declined", charge_id=pi_id, decline=decline)


class StripeGateway:
    """The :class:`~dunning.gateways.base.Gateway` protocol over Stripe's API.

    One ``httpx.Client`` is reused for every call; pass ``client`` to share one or to plug in a
    test transport. Constructing the gateway does no network IO.
    """

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        timeout_s: float,
        client: httpx.Client | None = None,
        api_version: str | None = None,
        max_lookup_pages: int = 100,
    ) -> None:
        if not api_key:
            raise ConfigError("the Stripe gateway needs an API key: set DUNNING_STRIPE__API_KEY")
        self._api_key = api_key
        self._base = api_base.rstrip("/")
        self._timeout_s = timeout_s
        self._client = client or httpx.Client(timeout=timeout_s)
        self._owns_client = client is None
        self._api_version = api_version
        self._max_lookup_pages = max_lookup_pages

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeGateway:
        """Build the gateway from ``stripe.api_key``, ``stripe.api_base`` and the timeout."""
        key = settings.stripe.api_key
        if key is None or not key.get_secret_value():
            raise ConfigError("the Stripe gateway needs an API key: set DUNNING_STRIPE__API_KEY")
        return cls(
            key.get_secret_value(),
            api_base=settings.stripe.api_base,
            timeout_s=settings.timing.gateway_timeout_s,
        )

    def close(self) -> None:
        """Close the HTTP client if this gateway created it."""
        if self._owns_client:
            self._client.close()

    # -- the Gateway protocol ------------------------------------------------------------------
    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Create and confirm a PaymentIntent; the same key again replays Stripe's first answer."""
        form: Form = {
            "amount": str(request.amount),
            "currency": request.currency.lower(),
            "customer": request.customer_id,
            "payment_method": request.token,
            "confirm": "true",
            **_NO_REDIRECTS,
        }
        if request.initiator is Initiator.merchant:
            form["off_session"] = "true"
        metadata = {**request.metadata, ATTEMPT_KEY: request.idempotency_key}
        form.update({f"metadata[{k}]": v for k, v in metadata.items()})
        status, body = self._call("POST", "/v1/payment_intents", form, request.idempotency_key)
        if status == 200:
            result = _intent_result(body)
        else:
            error = self._card_error(status, body)
            result = ChargeResult("declined", _ref(error, "payment_intent"), _decline(error))
        log.info("stripe charge %s: %s", request.idempotency_key, result.status)
        return result

    def lookup(self, idempotency_key: str, *, customer_id: str) -> ChargeResult | None:
        """Find the PaymentIntent carrying this key in its metadata; ``None`` if none exists."""
        params = {"customer": customer_id, "limit": "100"}
        for _ in range(self._max_lookup_pages):
            status, body = self._call("GET", "/v1/payment_intents", params=params)
            if status != 200:
                raise self._error(status, body)
            page = body.get("data")
            if not isinstance(page, list):
                raise GatewayUnavailable("stripe listed payment intents without a data list")
            for intent in page:
                metadata = intent.get("metadata") if isinstance(intent, Mapping) else None
                if _text(metadata, ATTEMPT_KEY) == idempotency_key:
                    return _intent_result(intent)
            last = _text(page[-1], "id") if page else None
            if body.get("has_more") is not True or last is None:
                return None
            params = {**params, "starting_after": last}
        raise StripeError(
            f"lookup of {idempotency_key} gave up after {self._max_lookup_pages} pages",
            status=0,
        )

    def verify(self, token: str, *, customer_id: str, currency: str) -> VerifyResult:
        """A $0 check through a confirmed off-session SetupIntent (``currency`` is not needed)."""
        form: Form = {
            "customer": customer_id,
            "payment_method": token,
            "confirm": "true",
            "usage": "off_session",
            **_NO_REDIRECTS,
        }
        status, body = self._call("POST", "/v1/setup_intents", form, f"verify-{uuid.uuid4()}")
        if status != 200:
            return VerifyResult(ok=False, decline=_decline(self._card_error(status, body)))
        state = _text(body, "status")
        if state == "succeeded":
            return VerifyResult(ok=True)
        if state == "requires_action":
            return VerifyResult(
                ok=False, requires_action=True, decline=Decline(decline_code=AUTH_REQUIRED)
            )
        if state in _UNSETTLED or state is None:
            raise GatewayUnavailable(f"stripe setup intent is {state}: outcome not known yet")
        error = body.get("last_setup_error")
        decline = _decline(error) if isinstance(error, Mapping) else Decline(decline_code=state)
        return VerifyResult(ok=False, decline=decline)

    def delete_token(self, token: str) -> None:
        """Detach the payment method from its customer; an already detached one is fine."""
        path = f"/v1/payment_methods/{quote(token, safe='')}/detach"
        status, body = self._call("POST", path, {}, f"detach-{uuid.uuid4()}")
        if status == 200:
            return
        error = body.get("error")
        if status == 404 or _text(error, "code") in _ALREADY_DETACHED:
            log.info("stripe payment method %s was already detached", token)
            return
        raise self._error(status, body)

    def pay_invoice(
        self, stripe_invoice_id: str, *, payment_method: str | None, idempotency_key: str
    ) -> ChargeResult:
        """Pay a Stripe Billing invoice through the invoice, so Stripe's own state stays right."""
        form: Form = {"off_session": "true"}
        if payment_method:
            form["payment_method"] = payment_method
        path = f"/v1/invoices/{quote(stripe_invoice_id, safe='')}/pay"
        status, body = self._call("POST", path, form, idempotency_key)
        if status != 200:
            error = self._card_error(status, body)
            return ChargeResult("declined", _ref(error, "payment_intent"), _decline(error))
        state = _text(body, "status")
        if state != "paid":
            raise GatewayUnavailable(f"stripe invoice {stripe_invoice_id} is {state}, not paid")
        return ChargeResult(
            "succeeded", charge_id=_ref(body, "payment_intent") or _text(body, "id")
        )

    # -- HTTP ----------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        form: Form | None = None,
        idempotency_key: str | None = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self._api_key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        if self._api_version:
            headers["Stripe-Version"] = self._api_version
        try:
            response = self._client.request(
                method,
                self._base + path,
                data=form,
                params=params,
                headers=headers,
                timeout=self._timeout_s,
            )
        except httpx.TimeoutException as exc:
            raise GatewayUnavailable(f"stripe {method} {path} timed out") from exc
        except httpx.TransportError as exc:
            raise GatewayUnavailable(
                f"stripe {method} {path} failed: {type(exc).__name__}"
            ) from exc
        status = response.status_code
        if status in (409, 429) or status >= 500:
            raise GatewayUnavailable(f"stripe {method} {path} answered {status}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise GatewayUnavailable(f"stripe {method} {path} answered {status} without JSON")
        return status, body

    def _card_error(self, status: int, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """The error object of a decline; any other failure raises a permanent error."""
        error = body.get("error")
        if isinstance(error, Mapping) and (
            _text(error, "type") == "card_error" or _text(error, "code") in _NEEDS_AUTH_CODES
        ):
            if _text(error, "code") == "invoice_payment_intent_requires_action":
                return {**error, "code": AUTH_REQUIRED}
            return error
        raise self._error(status, body)

    @staticmethod
    def _error(status: int, body: Mapping[str, Any]) -> StripeError:
        error = body.get("error")
        code = _text(error, "code")
        # Stripe's messages never echo a full card number, but mask one anyway before logging.
        message = mask_pans(_text(error, "message") or "no message")[:300]
        if status == 401:
            message += " (check DUNNING_STRIPE__API_KEY)"
        return StripeError(
            f"stripe refused the request ({status}, {code}): {message}", status=status, code=code
        )
