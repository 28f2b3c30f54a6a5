"""The card-update page a signed link opens: ``/update/{token}``.

GET shows the plan, the amount due, the current card, the subscription's state and what a new
card will do. POST verifies the new card through :func:`replace_card` and answers 303 to the
result page, 422 when the card fails verification, 403 on a CSRF failure, 429 when attempts
run out, 410 for a link that is expired, used, tampered or whose subscription is cancelled
(checked before a byte of the body is read), 413/408 for a form too large or too slow.

Only a form that reaches the gateway counts against the attempt limits: one the browser's
checks would have stopped (a mistyped number, expiry or CVC) is answered without counting. The
first decline says why (wrong CVC, expired, declined); every later one within the window says
only "declined", so a card tester learns nothing from the answers.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dunning.bootstrap import Container
from dunning.errors import GatewayUnavailable, NotFound
from dunning.gateways.base import CardToken
from dunning.gateways.sandbox import CardRefused
from dunning.gateways.stripe import StripeError, StripeGateway
from dunning.services.cards import CardDeclined, ReplaceResult, pay_open_invoices, replace_card
from dunning.web import challenge, csrf
from dunning.web.account import Account, LinkGone, chargeable_card, open_link
from dunning.web.card_form import (
    Entered,
    FormError,
    decline_message,
    entered,
    sandbox_card,
    stripe_card,
)
from dunning.web.client_address import client_address
from dunning.web.form_body import FormRefused, read_form
from dunning.web.ratelimit import AttemptLimits
from dunning.web.receipt import (
    done_url,
    paid_amounts,
    reactivate_outcome,
    read_paid,
    replace_outcome,
)
from dunning.web.views import View

log = logging.getLogger(__name__)

ACTIONS = Counter(
    "dunning_card_page_actions_total",
    "Card-update page submissions, by action and result",
    ["action", "result"],
)
MAX_FIELDS = 20


class UpdatePage:
    """The page's handlers; blocking database and gateway calls run in the threadpool."""

    def __init__(self, c: Container, limits: AttemptLimits) -> None:
        self.c = c
        self.limits = limits
        self.view = View(c)
        self.proxies = c.settings.web.proxy_networks()

    # -- GET ----------------------------------------------------------------------------------
    async def show(self, request: Request) -> Response:
        token = request.path_params["token"]
        now = self.c.clock.now()
        try:
            account = await run_in_threadpool(open_link, self.c, token, now)
        except LinkGone as exc:
            return self.view.gone(exc)
        value = csrf.new_token(self.c.settings.link_secret, token)
        response = self.view.form(account, token, value)
        self.view.set_csrf_cookie(response, token, value)
        return response

    async def done(self, request: Request) -> Response:
        token = request.path_params["token"]
        now = self.c.clock.now()
        try:
            account = await run_in_threadpool(open_link, self.c, token, now, current=False)
        except LinkGone as exc:
            return self.view.gone(exc)
        query = request.query_params
        outcome = query.get("outcome", "")
        secret = self.c.settings.link_secret
        paid = read_paid(secret, token, outcome, query.get("paid", ""), query.get("sig", ""))
        return self.view.done(account, token, outcome, paid)

    # -- POST ---------------------------------------------------------------------------------
    async def _guard(
        self, request: Request, action: str
    ) -> tuple[Account, FormData, datetime] | Response:
        """Link, form, CSRF and room in the limits, in that order; a Response means "stop
        here". The link is checked before the body is read; nothing is counted yet."""
        token = request.path_params["token"]
        now = self.c.clock.now()
        try:
            account = await run_in_threadpool(open_link, self.c, token, now)
        except LinkGone as exc:
            ACTIONS.labels(action, "gone").inc()
            return self.view.gone(exc)
        try:
            form = await read_form(request, self.c.settings.web, max_fields=MAX_FIELDS)
        except FormRefused as exc:
            ACTIONS.labels(action, f"refused_{exc.status}").inc()
            return Response(status_code=exc.status, headers={"Connection": "close"})
        field = form.get(csrf.FIELD)
        if not csrf.check(
            self.c.settings.link_secret,
            token,
            request.cookies.get(csrf.COOKIE),
            field if isinstance(field, str) else None,
        ):
            ACTIONS.labels(action, "csrf").inc()
            log.warning("card page %s refused for customer %s: CSRF", action, account.customer_id)
            return self.view.message(account, "error_title", "err_csrf", 403)
        request.state.address = client_address(request, self.proxies)
        address = request.state.address
        full = await run_in_threadpool(self.limits.full, account.customer_id, address, now)
        return self._rate_limited(account, action) if full else (account, form, now)

    def _rate_limited(self, account: Account, action: str) -> Response:
        ACTIONS.labels(action, "rate_limited").inc()
        log.warning("card page %s rate-limited for customer %s", action, account.customer_id)
        return self.view.message(account, "rate_title", "err_rate", 429)

    async def _take(self, request: Request, account: Account, now: datetime) -> bool:
        """Count one attempt that is about to reach the gateway; False when there is no room.
        One budget per customer: several links of the same customer share the allowance."""
        address = request.state.address
        return await run_in_threadpool(self.limits.allow, account.customer_id, address, now)

    async def submit(self, request: Request) -> Response:
        guarded = await self._guard(request, "update")
        if isinstance(guarded, Response):
            return guarded
        account, form, now = guarded
        token, value = request.path_params["token"], str(form.get(csrf.FIELD))
        kept = entered(form)
        try:
            if self.c.settings.gateway == "stripe":
                card = await run_in_threadpool(stripe_card, self.c.gateway, form, now)
            else:
                card = sandbox_card(self.c.gateway, form, now)
        except FormError as exc:
            # Caught before any gateway call: not counted against the customer.
            ACTIONS.labels("update", "invalid").inc()
            return self.view.form(
                account, token, value, error=exc.key, fields=exc.fields, entered=kept, status=422
            )
        except GatewayUnavailable as exc:
            ACTIONS.labels("update", "unavailable").inc()
            log.warning("card details for customer %s: %s", account.customer_id, exc)
            return self.view.form(account, token, value, error="err_unavailable", status=503)
        finally:
            # The card number and CVC go no further than this request's form.
            await form.close()
            del form
        if not await self._take(request, account, now):
            return self._rate_limited(account, "update")
        return await self._replace(account, token, value, card, kept.remove_old, now)

    async def authenticate(self, request: Request) -> Response:
        guarded = await self._guard(request, "authenticate")
        if isinstance(guarded, Response):
            return guarded
        account, form, now = guarded
        token, value = request.path_params["token"], str(form.get(csrf.FIELD))
        sealed, kept = form.get("card"), Entered()
        try:
            card, remove_old, intent = challenge.unseal(
                self.c.settings.link_secret, token, sealed if isinstance(sealed, str) else "", now
            )
            kept = Entered.card(card, remove_old)
            card = await challenge.authenticated(self.c.gateway, card, intent, form.get("result"))
        except (ValueError, CardRefused, StripeError) as exc:
            log.info("card challenge for customer %s not completed: %s", account.customer_id, exc)
            ACTIONS.labels("authenticate", "failed").inc()
            return self.view.form(
                account, token, value, error="err_auth_failed", entered=kept, status=422
            )
        except GatewayUnavailable as exc:
            ACTIONS.labels("authenticate", "unavailable").inc()
            log.warning("card challenge for customer %s: %s", account.customer_id, exc)
            return self.view.form(account, token, value, error="err_unavailable", status=503)
        if not await self._take(request, account, now):
            return self._rate_limited(account, "authenticate")
        verified = isinstance(self.c.gateway, StripeGateway)
        return await self._replace(account, token, value, card, remove_old, now, verified)

    async def _replace(
        self,
        account: Account,
        token: str,
        value: str,
        card: CardToken,
        remove_old: bool,
        now: datetime,
        verified: bool = False,
    ) -> Response:
        customer_id = account.customer_id
        replace = partial(replace_card, self.c, customer_id, card, remove_old=remove_old, now=now)
        pm_id = card.token if self.view.stripe else None  # Stripe's id, as its webhooks name it
        try:
            result = await run_in_threadpool(replace, verified=verified, payment_method_id=pm_id)
        except CardDeclined as exc:
            if exc.requires_action:
                ACTIONS.labels("update", "requires_action").inc()
                sealed = challenge.seal(
                    self.c.settings.link_secret,
                    token,
                    card,
                    remove_old=remove_old,
                    now=now,
                    intent=exc.action_ref,
                )
                secret = exc.client_secret or ""
                return self.view.challenge(account, token, value, card, sealed, secret)
            ACTIONS.labels("update", "declined").inc()
            again = await run_in_threadpool(self.limits.declined_before, customer_id, now)
            message = "err_declined" if again else decline_message(exc.decline)
            kept = Entered.card(card, remove_old)
            return self.view.form(account, token, value, error=message, entered=kept, status=422)
        except GatewayUnavailable as exc:
            ACTIONS.labels("update", "unavailable").inc()
            log.warning("card verification for customer %s: %s", customer_id, exc)
            return self.view.form(account, token, value, error="err_unavailable", status=503)
        except NotFound:
            return self.view.gone(LinkGone("tampered"))
        outcome = replace_outcome(result)
        ACTIONS.labels("update", outcome).inc()
        log.info("card updated for customer %s: %s", customer_id, outcome)
        return await self._done(token, outcome, result)

    async def _done(self, token: str, outcome: str, result: ReplaceResult) -> Response:
        """303 to the result page, which shows what was charged (signed in the address)."""
        paid = await run_in_threadpool(paid_amounts, self.c, result)
        url = done_url(self.c.settings.link_secret, token, outcome, paid)
        return RedirectResponse(url, status_code=303)

    async def reactivate(self, request: Request) -> Response:
        guarded = await self._guard(request, "reactivate")
        if isinstance(guarded, Response):
            return guarded
        account, form, now = guarded
        token, value = request.path_params["token"], str(form.get(csrf.FIELD))
        if not account.suspended:
            # Only a suspended subscription offers this; a past-due one waits for its retries
            # or a new card, so a stale form must not charge the old card out of turn.
            return RedirectResponse(f"/update/{token}", status_code=303)
        card = chargeable_card(account)
        if card is None:
            ACTIONS.labels("reactivate", "no_card").inc()
            return self.view.form(account, token, value, error="err_no_card", status=422)
        if not await self._take(request, account, now):
            return self._rate_limited(account, "reactivate")
        result = ReplaceResult(str(card["id"]))
        await run_in_threadpool(
            pay_open_invoices, self.c, account.customer_id, str(card["id"]), now, result
        )
        outcome = reactivate_outcome(result)
        ACTIONS.labels("reactivate", outcome).inc()
        log.info("reactivation for customer %s: %s", account.customer_id, outcome)
        return await self._done(token, outcome, result)


def routes(c: Container, limits: AttemptLimits) -> list[Any]:
    """The card-update page's routes."""
    page = UpdatePage(c, limits)
    return [
        Route("/update/{token}", page.show, methods=["GET"]),
        Route("/update/{token}", page.submit, methods=["POST"]),
        Route("/update/{token}/authenticate", page.authenticate, methods=["POST"]),
        Route("/update/{token}/reactivate", page.reactivate, methods=["POST"]),
        Route("/update/{token}/done", page.done, methods=["GET"]),
    ]
