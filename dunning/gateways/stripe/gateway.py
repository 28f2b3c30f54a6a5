"""Stripe as a gateway: off-session charges over Stripe's HTTP API.

A debt that is a Stripe Billing invoice is paid through that invoice
(:mod:`dunning.gateways.stripe.invoices`); any other debt through a PaymentIntent. Stripe keeps
an idempotency key for at least 24 hours and cannot look a charge up by it, so the key also goes
into the PaymentIntent's ``metadata`` and :meth:`StripeGateway.lookup` lists the customer's
PaymentIntents to find it (docs/webhooks.md §3). A create is never replayed to learn an
outcome. Timeouts, dropped connections, 409, 429 and 5xx raise
:class:`~dunning.errors.GatewayUnavailable`: the outcome is unknown, not a decline. Every
gateway call, however many requests it makes, ends within ``timeout_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import httpx

from dunning.errors import ConfigError, GatewayUnavailable
from dunning.gateways.base import CardToken, ChargeRequest, ChargeResult, VerifyResult
from dunning.gateways.stripe import invoices, methods, setup
from dunning.gateways.stripe.account import StripeRetries, stripe_retries
from dunning.gateways.stripe.answers import ATTEMPT_KEY, declined, intent_result, text
from dunning.gateways.stripe.http import Form, StripeError, StripeHttp, refused
from dunning.gateways.stripe.setup import NO_REDIRECTS
from dunning.model import Initiator

if TYPE_CHECKING:
    from config.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.stripe.com"
# The API version the adapter is written against (the invoice still names its PaymentIntent).
DEFAULT_API_VERSION = "2025-02-24.acacia"


class StripeGateway:
    """The :class:`~dunning.gateways.base.Gateway` protocol over Stripe's API.

    ``customer_id`` arguments are Stripe's customer ids (``cus_...``), never ours. Pass
    ``transport`` to plug in a test transport. Constructing the gateway does no network IO.
    """

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        api_version: str = DEFAULT_API_VERSION,
        max_lookup_pages: int = 100,
    ) -> None:
        if not api_key:
            raise ConfigError("the Stripe gateway needs an API key: set DUNNING_STRIPE__API_KEY")
        self.http = StripeHttp(
            api_key,
            api_base=api_base,
            api_version=api_version,
            timeout_s=timeout_s,
            transport=transport,
        )
        self._max_lookup_pages = max_lookup_pages

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeGateway:
        """Build the gateway from ``stripe.api_key``, ``api_base``, ``api_version`` and the
        gateway timeout."""
        key = settings.stripe.api_key
        if key is None or not key.get_secret_value():
            raise ConfigError("the Stripe gateway needs an API key: set DUNNING_STRIPE__API_KEY")
        return cls(
            key.get_secret_value(),
            api_base=settings.stripe.api_base,
            api_version=settings.stripe.api_version,
            timeout_s=settings.timing.gateway_timeout_s,
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    # -- the Gateway protocol ------------------------------------------------------------------
    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Pay the Stripe invoice when the debt is one, else create and confirm a PaymentIntent;
        the same key again replays Stripe's first answer."""
        deadline = self.http.deadline()
        off_session = request.initiator is Initiator.merchant
        if request.invoice_ref:
            result = invoices.pay(
                self.http,
                request.invoice_ref,
                payment_method=request.token,
                idempotency_key=request.idempotency_key,
                off_session=off_session,
                deadline=deadline,
            )
        else:
            result = self._intent(request, off_session, deadline)
        log.info("stripe charge %s: %s", request.idempotency_key, result.status)
        return result

    def _intent(self, request: ChargeRequest, off_session: bool, deadline: float) -> ChargeResult:
        form: Form = {
            "amount": str(request.amount),
            "currency": request.currency.lower(),
            "customer": request.customer_id,
            "payment_method": request.token,
            "confirm": "true",
            **NO_REDIRECTS,
        }
        if off_session:
            form["off_session"] = "true"
        metadata = {**request.metadata, ATTEMPT_KEY: request.idempotency_key}
        form.update({f"metadata[{k}]": v for k, v in metadata.items()})
        status, body = self.http.call(
            "POST", "/v1/payment_intents", form, request.idempotency_key, deadline=deadline
        )
        return intent_result(body) if status == 200 else declined(status, body)

    def lookup(
        self, idempotency_key: str, *, customer_id: str, invoice_ref: str | None = None
    ) -> ChargeResult | None:
        """What the charge under this key did; ``None`` if it took no money. A charge of a
        Stripe invoice is read from the invoice; any other from the customer's PaymentIntents."""
        deadline = self.http.deadline()
        if invoice_ref:
            return invoices.find(self.http, invoice_ref, deadline=deadline)
        params = {"customer": customer_id, "limit": "100"}
        for _ in range(self._max_lookup_pages):
            status, body = self.http.call(
                "GET", "/v1/payment_intents", params=params, deadline=deadline
            )
            if status != 200:
                raise refused(status, body)
            page = body.get("data")
            if not isinstance(page, list):
                raise GatewayUnavailable("stripe listed payment intents without a data list")
            for intent in page:
                metadata = intent.get("metadata") if isinstance(intent, Mapping) else None
                if text(metadata, ATTEMPT_KEY) == idempotency_key:
                    return intent_result(intent)
            last = text(page[-1], "id") if page else None
            if body.get("has_more") is not True or last is None:
                return None
            params = {**params, "starting_after": last}
        raise StripeError(
            f"lookup of {idempotency_key} gave up after {self._max_lookup_pages} pages",
            status=0,
        )

    def verify(self, token: str, *, customer_id: str, currency: str) -> VerifyResult:
        """A $0 check through a confirmed off-session SetupIntent (``currency`` is not needed);
        one that needs 3-D Secure carries the SetupIntent for the customer to confirm."""
        return setup.verify(
            self.http, token, customer_id=customer_id, deadline=self.http.deadline()
        )

    def delete_token(self, token: str) -> None:
        """Detach the payment method from its customer; an already detached one is fine."""
        methods.detach(self.http, token, deadline=self.http.deadline())

    # -- beyond the protocol -------------------------------------------------------------------
    def pay_invoice(
        self, stripe_invoice_id: str, *, payment_method: str | None, idempotency_key: str
    ) -> ChargeResult:
        """Pay a Stripe Billing invoice off-session through the invoice."""
        return invoices.pay(
            self.http,
            stripe_invoice_id,
            payment_method=payment_method,
            idempotency_key=idempotency_key,
            off_session=True,
            deadline=self.http.deadline(),
        )

    def card_details(self, token: str) -> CardToken:
        """The card as Stripe holds it (brand, last4, expiry), never as a browser said."""
        return methods.card(self.http, token, deadline=self.http.deadline())

    def setup_result(self, setup_intent_id: str, *, token: str) -> VerifyResult:
        """Where a SetupIntent for ``token`` that the customer confirmed (3-D Secure) stands."""
        return setup.result(self.http, setup_intent_id, token=token, deadline=self.http.deadline())

    def stripe_retries(self) -> StripeRetries:
        """Whether Stripe will retry open invoices itself (read from the invoices)."""
        return stripe_retries(self.http, deadline=self.http.deadline())
