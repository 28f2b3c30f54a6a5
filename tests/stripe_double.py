"""A local stand-in for Stripe's API: just enough of PaymentIntents, SetupIntents, payment
method detach and invoice pay for :class:`~dunning.gateways.stripe.StripeGateway`.

It is strict where Stripe is and where the gateway must be: Bearer auth, form encoding,
an ``Idempotency-Key`` on every POST, lower-case currencies. The same key with the same
parameters replays the stored answer; with other parameters it is a 400 ``idempotency_error``.
Faults are queued with :meth:`StripeDouble.fail_next`: ``timeout`` (no answer, nothing done),
``timeout_after`` (done, then no answer), ``drip`` (done, then the answer a byte at a time,
over real HTTP only), ``500``, ``429`` and ``connect``.

The same double serves two ways: :meth:`StripeDouble.transport` (httpx.MockTransport, in process)
and :func:`serve` (Starlette under uvicorn on 127.0.0.1, real HTTP). Served, it also stands in
for Stripe.js (``/js/v3/``, ``stripe_double.js``): the card element, ``createPaymentMethod`` and
``handleNextAction``/``confirmCardSetup`` with a test 3-D Secure page whose "Complete" and
"Fail" buttons are the bank's answer, all against the double with the publishable key.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.services import free_port

JSON = dict[str, Any]
# The stand-in for Stripe.js the double serves at /js/v3/ (the card page's Stripe.js URL).
STRIPE_JS = Path(__file__).with_name("stripe_double.js")


@dataclass(frozen=True)
class Behaviour:
    """How a payment method answers: succeed, decline (with Stripe's codes) or need 3-D Secure."""

    code: str | None = None  # error code; None means success
    decline_code: str | None = None
    network_decline_code: str | None = None
    advice_code: str | None = None
    network_advice_code: str | None = None
    # The card's SetupIntent needs 3-D Secure; once set up, off-session charges go through.
    setup_auth: bool = False


def _declined(decline_code: str, network: str | None, code: str = "card_declined") -> Behaviour:
    return Behaviour(code, decline_code, network)


# Stripe's test payment methods, so the tests read like Stripe's docs.
TEST_METHODS: dict[str, Behaviour] = {
    "pm_card_visa": Behaviour(),
    "pm_card_mastercard": Behaviour(),
    "pm_card_chargeDeclined": _declined("generic_decline", "05"),
    "pm_card_chargeDeclinedInsufficientFunds": _declined("insufficient_funds", "51"),
    "pm_card_chargeDeclinedLostCard": _declined("lost_card", "41"),
    "pm_card_chargeDeclinedStolenCard": _declined("stolen_card", "43"),
    "pm_card_chargeDeclinedExpiredCard": _declined("expired_card", "54", "expired_card"),
    "pm_card_chargeDeclinedIncorrectCvc": _declined("incorrect_cvc", "N7", "incorrect_cvc"),
    "pm_card_chargeDeclinedProcessingError": _declined(
        "processing_error", "96", "processing_error"
    ),
    "pm_card_authenticationRequired": Behaviour("authentication_required"),
    "pm_card_authenticationRequiredSetupForOffSession": Behaviour(setup_auth=True),
}
# Stripe's test card numbers, for payment methods Stripe.js creates on the card page.
TEST_CARDS: dict[str, str] = {
    "4242424242424242": "pm_card_visa",
    "5555555555554444": "pm_card_mastercard",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000000000009995": "pm_card_chargeDeclinedInsufficientFunds",
    "4000002760003184": "pm_card_authenticationRequired",
    "4000002500003155": "pm_card_authenticationRequiredSetupForOffSession",
}
PUBLISHABLE_KEY = "pk_test_double"
# A real Stripe test PaymentMethod's card, as GET /v1/payment_methods/{id} shows it.
_TEST_LAST4 = {"pm_card_visa": "4242", "pm_card_mastercard": "4444"}


@dataclass
class Seen:
    """One request as the double received it (``path`` as sent on the wire, still escaped)."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    query: dict[str, str]
    replayed: bool = False


@dataclass
class Reply:
    status: int
    body: JSON
    fault: str | None = None  # timeout | timeout_after | connect


@dataclass
class StripeDouble:
    api_key: str = "sk_test_double"
    behaviours: dict[str, Behaviour] = field(default_factory=lambda: dict(TEST_METHODS))
    seen: list[Seen] = field(default_factory=list)
    intents: list[JSON] = field(default_factory=list)
    invoices: dict[str, JSON] = field(default_factory=dict)
    detached: set[str] = field(default_factory=set)
    hang_s: float = 10.0  # how long a "timeout" holds the HTTP answer back
    drip_s: float = 0.05  # the pause between the bytes of a "drip" answer
    # Stripe's own retries (a Dashboard setting, not in the API): when on, an open invoice
    # collected automatically shows its next retry in ``next_payment_attempt``.
    smart_retries: bool = False
    publishable_key: str = PUBLISHABLE_KEY
    methods: dict[str, JSON] = field(default_factory=dict)  # payment methods Stripe.js made
    setups: dict[str, JSON] = field(default_factory=dict)
    attached: dict[str, str] = field(default_factory=dict)  # payment method -> customer
    created: int = 1_772_452_800  # the invoices' ``created`` (2026-03-02)
    _faults: list[str] = field(default_factory=list)
    _keys: dict[str, tuple[str, dict[str, str], Reply]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)

    # -- scripting -----------------------------------------------------------------------------
    def fail_next(self, *faults: str) -> None:
        """Answer the next requests with these faults, one each, in order."""
        with self._lock:
            self._faults.extend(faults)

    def add_invoice(self, invoice_id: str, *, customer: str, amount: int, currency: str) -> None:
        self.invoices[invoice_id] = {
            "id": invoice_id,
            "object": "invoice",
            "customer": customer,
            "amount_due": amount,
            "currency": currency,
            "status": "open",
            "payment_intent": None,
            "collection_method": "charge_automatically",
            "auto_advance": True,
            "created": self.created,
        }

    def release(self) -> None:
        """Let held ("timeout") HTTP answers go, so the server can stop at once."""
        self._release.set()

    def posts(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path == path]

    # -- the API -------------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, query: str
    ) -> Reply:
        headers = {k.lower(): v for k, v in headers.items()}
        form = dict(parse_qsl(body.decode(), keep_blank_values=True)) if body else {}
        seen = Seen(method, path, headers, form, dict(parse_qsl(query)))
        with self._lock:
            self.seen.append(seen)
            fault = self._faults.pop(0) if self._faults else None
            if fault in ("500", "429"):
                return Reply(int(fault), _error("api_error", "injected", "injected fault"))
            if fault in ("timeout", "connect"):
                return Reply(504, {}, fault)
            if "authorization" not in headers and "key" in {**seen.query, **form}:
                return self._browser(method, path, {**seen.query, **form})
            reply = self._checked(method, path, headers, body, form, seen)
            return Reply(reply.status, reply.body, fault) if fault else reply

    def _checked(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        form: dict[str, str],
        seen: Seen,
    ) -> Reply:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(401, _error("invalid_request_error", None, "Invalid API Key provided"))
        if method != "POST":
            return self._route(method, path, seen.query)
        if body and headers.get("content-type") != "application/x-www-form-urlencoded":
            return Reply(400, _error("invalid_request_error", None, "expected a form body"))
        key = headers.get("idempotency-key")
        if not key:
            return Reply(
                400, _error("invalid_request_error", None, "the double wants an Idempotency-Key")
            )
        stored = self._keys.get(key)
        if stored is not None:
            if (stored[0], stored[1]) != (path, form):
                return Reply(
                    400,
                    _error(
                        "idempotency_error",
                        None,
                        "Keys for idempotent requests can only be used with the same parameters",
                    ),
                )
            seen.replayed = True
            return stored[2]
        reply = self._route(method, path, form)
        self._keys[key] = (path, form, reply)
        return reply

    def _route(self, method: str, path: str, params: dict[str, str]) -> Reply:
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/v1/payment_intents":
            return self._list_intents(params)
        if method == "GET" and path == "/v1/invoices":
            return self._list_invoices(params)
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "payment_methods"]:
            return self._get_method(parts[2])
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "setup_intents"]:
            setup = self.setups.get(parts[2])
            return (
                Reply(200, dict(setup)) if setup else Reply(404, _missing("setup_intent", parts[2]))
            )
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "invoices"]:
            return self._get_invoice(parts[2])
        if method == "POST" and path == "/v1/payment_intents":
            return self._create_intent(params)
        if method == "POST" and path == "/v1/setup_intents":
            return self._setup(params)
        if (
            method == "POST"
            and len(parts) == 4
            and parts[:2] == ["v1", "payment_methods"]
            and parts[3] == "detach"
        ):
            return self._detach(parts[2])
        if (
            method == "POST"
            and len(parts) == 4
            and parts[:2] == ["v1", "invoices"]
            and parts[3] == "pay"
        ):
            return self._pay_invoice(parts[2], params)
        return Reply(
            404,
            _error(
                "invalid_request_error",
                "resource_missing",
                f"Unrecognized request URL ({method}: {path})",
            ),
        )

    def _create_intent(self, form: dict[str, str]) -> Reply:
        missing = [
            k for k in ("amount", "currency", "customer", "payment_method") if not form.get(k)
        ]
        if missing:
            return Reply(
                400,
                _error(
                    "invalid_request_error",
                    "parameter_missing",
                    f"Missing required param: {missing[0]}.",
                ),
            )
        if form["currency"] != form["currency"].lower() or not form["amount"].isdigit():
            return Reply(
                400,
                _error("invalid_request_error", "parameter_invalid", "Invalid currency or amount"),
            )
        behaviour = self.behaviours.get(form["payment_method"])
        if behaviour is None:
            return Reply(
                400,
                _error(
                    "invalid_request_error",
                    "resource_missing",
                    f"No such PaymentMethod: '{form['payment_method']}'",
                ),
            )
        intent: JSON = {
            "id": f"pi_double{next(self._ids):06d}",
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": form["currency"],
            "customer": form["customer"],
            "payment_method": form["payment_method"],
            "metadata": _sub(form, "metadata"),
            "status": "succeeded",
            "last_payment_error": None,
        }
        self.intents.append(intent)
        if behaviour.code is None:
            return Reply(200, intent)
        if behaviour.code == "authentication_required" and form.get("off_session") != "true":
            intent["status"] = "requires_action"
            return Reply(200, intent)
        error = _card_error(behaviour)
        intent.update(status="requires_payment_method", last_payment_error=error)
        return Reply(402, {"error": {**error, "payment_intent": intent}})

    def _list_intents(self, query: dict[str, str]) -> Reply:
        mine = [i for i in reversed(self.intents) if i["customer"] == query.get("customer")]
        after = query.get("starting_after")
        if after:
            ids = [i["id"] for i in mine]
            mine = mine[ids.index(after) + 1 :] if after in ids else []
        limit = int(query.get("limit", "10"))
        page = mine[:limit]
        return Reply(
            200,
            {
                "object": "list",
                "data": page,
                "has_more": len(mine) > limit,
                "url": "/v1/payment_intents",
            },
        )

    def _setup(self, form: dict[str, str]) -> Reply:
        method = form.get("payment_method", "")
        behaviour = self.behaviours.get(method)
        if behaviour is None:
            return Reply(
                400, _error("invalid_request_error", "resource_missing", "No such PaymentMethod")
            )
        setup_id = f"seti_double{next(self._ids):06d}"
        setup: JSON = {
            "id": setup_id,
            "object": "setup_intent",
            "client_secret": f"{setup_id}_secret_double",
            "customer": form.get("customer"),
            "payment_method": method,
            "usage": form.get("usage", "off_session"),
            "metadata": _sub(form, "metadata"),
            "status": "succeeded",
            "last_setup_error": None,
        }
        self.setups[setup_id] = setup
        if behaviour.setup_auth or behaviour.code == "authentication_required":
            setup["status"] = "requires_action"
            setup["next_action"] = {"type": "use_stripe_sdk"}
            return Reply(200, dict(setup))
        if behaviour.code is not None:
            setup["status"] = "requires_payment_method"
            error = _card_error(behaviour)
            return Reply(402, {"error": {**error, "setup_intent": dict(setup)}})
        self._attach(method, setup["customer"])
        return Reply(200, dict(setup))

    def _attach(self, method: str, customer: str | None) -> None:
        if customer:
            self.attached[method] = customer

    def _get_method(self, method_id: str) -> Reply:
        if method_id in self.methods:
            return Reply(200, {**self.methods[method_id], "customer": self.attached.get(method_id)})
        if method_id not in self.behaviours:
            return Reply(404, _missing("payment_method", method_id))
        brand = "mastercard" if "mastercard" in method_id else "visa"
        card = {"brand": brand, "last4": _TEST_LAST4.get(method_id, "0000")}
        card.update(exp_month=12, exp_year=2034)
        return Reply(
            200,
            {
                "id": method_id,
                "object": "payment_method",
                "type": "card",
                "card": card,
                "customer": self.attached.get(method_id),
            },
        )

    # -- what Stripe.js does in the customer's browser (publishable key, client secret) ----------
    def _browser(self, method: str, path: str, params: dict[str, str]) -> Reply:
        if params.get("key") != self.publishable_key:
            return Reply(401, _error("invalid_request_error", None, "Invalid publishable key"))
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/payment_methods":
            return self._create_method(params)
        if len(parts) >= 3 and parts[:2] == ["v1", "setup_intents"]:
            setup = self.setups.get(parts[2])
            if setup is None or params.get("client_secret") != setup["client_secret"]:
                return Reply(404, _missing("setup_intent", parts[2]))
            if method == "POST" and parts[3:] == ["authenticate"]:
                self._authenticate(setup, params.get("result") == "complete")
            return Reply(200, dict(setup))
        return Reply(404, _missing("route", path))

    def _create_method(self, params: dict[str, str]) -> Reply:
        """A card PaymentMethod from the numbers typed into the card element (never kept)."""
        number = params.get("card[number]", "").replace(" ", "")
        like = TEST_CARDS.get(number)
        month, year = params.get("card[exp_month]", ""), params.get("card[exp_year]", "")
        if like is None or not (month.isdigit() and year.isdigit()):
            return Reply(
                402,
                _error("card_error", "incorrect_number", "Your card number is incorrect."),
            )
        method_id = f"pm_double{next(self._ids):06d}"
        self.behaviours[method_id] = self.behaviours[like]
        brand = "mastercard" if number.startswith("5") else "visa"
        full_year = int(year) + 2000 if len(year) == 2 else int(year)
        card = {"brand": brand, "last4": number[-4:], "exp_month": int(month)}
        card["exp_year"] = full_year
        self.methods[method_id] = {
            "id": method_id,
            "object": "payment_method",
            "type": "card",
            "card": card,
        }
        return Reply(200, {**self.methods[method_id], "customer": None})

    def _authenticate(self, setup: JSON, completed: bool) -> None:
        """The bank's answer to the 3-D Secure challenge of a SetupIntent."""
        if setup["status"] != "requires_action":
            return
        setup.pop("next_action", None)
        if completed:
            setup["status"] = "succeeded"
            self._attach(setup["payment_method"], setup["customer"])
            return
        setup["status"] = "requires_payment_method"
        setup["last_setup_error"] = {
            "type": "invalid_request_error",
            "code": "setup_intent_authentication_failure",
            "message": "We are unable to authenticate your payment method.",
        }

    def _detach(self, method_id: str) -> Reply:
        if method_id not in self.behaviours or method_id in self.detached:
            return Reply(
                404,
                _error(
                    "invalid_request_error",
                    "resource_missing",
                    f"No such PaymentMethod: '{method_id}'",
                ),
            )
        self.detached.add(method_id)
        return Reply(200, {"id": method_id, "object": "payment_method", "customer": None})

    def _invoice(self, invoice: JSON) -> JSON:
        """An invoice as Stripe shows it, with ``next_payment_attempt`` worked out."""
        retried = (
            self.smart_retries
            and invoice["status"] == "open"
            and invoice["auto_advance"]
            and invoice["collection_method"] == "charge_automatically"
        )
        return {
            **invoice,
            "next_payment_attempt": invoice["created"] + 3 * 86400 if retried else None,
        }

    def _get_invoice(self, invoice_id: str) -> Reply:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            return Reply(404, _missing("invoice", invoice_id))
        intent = next((i for i in self.intents if i["id"] == invoice["payment_intent"]), None)
        shown = self._invoice(invoice)
        return Reply(200, {**shown, "payment_intent": intent or invoice["payment_intent"]})

    def _list_invoices(self, query: dict[str, str]) -> Reply:
        wanted = [
            self._invoice(i)
            for i in self.invoices.values()
            if query.get("status", i["status"]) == i["status"]
            and query.get("collection_method", i["collection_method"]) == i["collection_method"]
        ]
        limit = int(query.get("limit", "10"))
        return Reply(
            200,
            {
                "object": "list",
                "data": wanted[:limit],
                "has_more": len(wanted) > limit,
                "url": "/v1/invoices",
            },
        )

    def _pay_invoice(self, invoice_id: str, form: dict[str, str]) -> Reply:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            return Reply(
                404,
                _error(
                    "invalid_request_error", "resource_missing", f"No such invoice: '{invoice_id}'"
                ),
            )
        method = form.get("payment_method", "pm_card_visa")
        if method in self.methods and self.attached.get(method) != invoice["customer"]:
            return Reply(
                400,
                _error(
                    "invalid_request_error",
                    None,
                    f"The PaymentMethod {method} does not belong to customer {invoice['customer']}",
                ),
            )
        behaviour = self.behaviours.get(method, Behaviour())
        pi_id = f"pi_double{next(self._ids):06d}"
        if behaviour.code == "authentication_required":
            return Reply(
                402,
                _error(
                    "card_error",
                    "invoice_payment_intent_requires_action",
                    "This payment requires additional user action",
                ),
            )
        if behaviour.code is not None:
            return Reply(
                402, {"error": {**_card_error(behaviour), "payment_intent": {"id": pi_id}}}
            )
        invoice.update(status="paid", payment_intent=pi_id)
        return Reply(200, self._invoice(invoice))

    async def _drip(self, reply: Reply) -> AsyncIterator[bytes]:
        """The answer one byte at a time, ``drip_s`` apart: every read is quick, the whole
        answer slow."""
        for byte in json.dumps(reply.body).encode():
            if self._release.is_set():
                return
            yield bytes([byte])
            await anyio.sleep(self.drip_s)

    # -- serving -------------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        """In-process transport: faults become the httpx exceptions a real network raises."""

        def handler(request: httpx.Request) -> httpx.Response:
            raw_path = request.url.raw_path.split(b"?")[0].decode()
            reply = self.handle(
                request.method,
                raw_path,
                request.headers,
                request.read(),
                request.url.query.decode(),
            )
            if reply.fault in ("timeout", "timeout_after"):
                raise httpx.ReadTimeout("double: no answer", request=request)
            if reply.fault == "connect":
                raise httpx.ConnectError("double: connection refused", request=request)
            return httpx.Response(reply.status, json=reply.body)

        return httpx.MockTransport(handler)

    def asgi_app(self) -> Starlette:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            raw_path = request.scope.get("raw_path", b"").decode() or request.url.path
            reply = self.handle(request.method, raw_path, request.headers, body, request.url.query)
            if reply.fault == "drip":
                return StreamingResponse(self._drip(reply), status_code=reply.status)
            if reply.fault is not None:
                # Hold the answer back until the client has given up (or the test releases it).
                await anyio.to_thread.run_sync(self._release.wait, self.hang_s)
            # Stripe.js calls the API from the card page's origin.
            cors = {"Access-Control-Allow-Origin": "*"}
            return JSONResponse(reply.body, status_code=reply.status, headers=cors)

        async def stripe_js(request: Request) -> Response:
            return Response(STRIPE_JS.read_text(), media_type="text/javascript")

        return Starlette(
            routes=[
                Route("/js/v3/", stripe_js, methods=["GET"]),
                Route("/{path:path}", endpoint, methods=["GET", "POST"]),
            ]
        )


def _sub(form: Mapping[str, str], name: str) -> dict[str, str]:
    prefix = name + "["
    return {
        k[len(prefix) : -1]: v for k, v in form.items() if k.startswith(prefix) and k.endswith("]")
    }


def _missing(kind: str, object_id: str) -> JSON:
    return _error("invalid_request_error", "resource_missing", f"No such {kind}: '{object_id}'")


def _error(kind: str, code: str | None, message: str) -> JSON:
    return {"error": {"type": kind, "code": code, "message": message}}


def _card_error(b: Behaviour) -> JSON:
    return {
        "type": "card_error",
        "code": b.code,
        "decline_code": b.decline_code or b.code,
        "network_decline_code": b.network_decline_code,
        "advice_code": b.advice_code,
        "network_advice_code": b.network_advice_code,
        "message": "Your card was declined.",
    }


@contextmanager
def serve(double: StripeDouble) -> Iterator[str]:
    """Serve ``double`` over real HTTP on 127.0.0.1; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        double.asgi_app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="none",
        http="h11",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="stripe-double", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # uvicorn offers a flag, not an event, for "listening"
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the Stripe double did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        double.release()
        server.should_exit = True
        thread.join(timeout=10)
