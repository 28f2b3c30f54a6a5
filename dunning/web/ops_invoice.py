"""``/ops/invoices/{id}``: one invoice with its timeline, and the operator actions the CLI has
(retry now, pause, resume, mark paid, write off), each a POST form with a reason; and the
pause of the invoice's whole customer (``POST /ops/customers/{id}/pause-customer``).

Every form carries the ``/ops`` CSRF token (:mod:`dunning.web.ops_auth`). An action calls the
same service as ``dunning invoice …`` (:mod:`dunning.services.operator`), audited with the ops
login's user name as the actor; what the invoice's state forbids is refused with the service's
words and nothing written.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dunning.bootstrap import Container
from dunning.errors import NotFound, PermanentError
from dunning.mail.formatting import money
from dunning.model import InvoiceStatus, may_move
from dunning.ops.history import invoice_history_report
from dunning.ops.invoice_view import card_text, when, words
from dunning.services import operator
from dunning.services.customer_pause import CUSTOMER_ACTIONS, apply_customer
from dunning.web.ops_auth import (
    authorized,
    challenge,
    csrf_ok,
    csrf_refused,
    new_csrf,
    set_csrf_cookie,
)
from dunning.web.ops_auth import (
    operator as ops_user,
)
from dunning.web.render import page

log = logging.getLogger(__name__)

LABELS = {
    "retry": "Retry now",
    "pause": "Pause",
    "resume": "Resume",
    "mark-paid": "Mark paid",
    "write-off": "Write off",
}
DONE = {
    "retry": "Retry queued: a worker charges it in a moment, network limits permitting.",
    "pause": "Paused: no retries or reminders until it is resumed.",
    "resume": "Resumed: retries and reminders are due again at their times.",
    "mark-paid": "Marked paid: its subscription is active and a receipt is queued.",
    "write-off": "Written off: no more retries, reminders or emails.",
    "pause-customer": "Customer paused: none of their invoices is charged or reminded until "
    "the customer is resumed.",
    "resume-customer": "Customer resumed: retries and reminders are due again at their times.",
}
MAX_REASON = 500
MAX_ID = 200


def available(inv: dict[str, Any]) -> list[str]:
    """The actions the invoice's state allows now (the service checks again)."""
    status = inv["status"]
    out = []
    if status == InvoiceStatus.open:
        out += ["resume"] if inv["paused"] else ["retry", "pause"]
    if may_move(status, InvoiceStatus.paid):
        out.append("mark-paid")
    if may_move(status, InvoiceStatus.uncollectible):
        out.append("write-off")
    return out


def _held(inv: dict[str, Any], cust: dict[str, Any]) -> str:
    held = [", paused"] if inv["paused"] else []
    return "".join(held + ([", customer paused"] if cust["dunning_paused"] else []))


def _summary(report: dict[str, Any]) -> list[tuple[str, str]]:
    inv, sub, cust = report["invoice"], report["subscription"], report["customer"]
    return [
        ("status", words(inv["status"]) + _held(inv, cust)),
        ("amount", money(inv["amount"], inv["currency"], "en") or "-"),
        ("customer", f"{cust['name'] or '-'} <{cust['email']}> ({cust['id']})"),
        ("subscription", f"{sub['id']}: {sub['plan']}, {words(sub['status'])}"),
        ("card", card_text(report["card"])),
        ("failed charges", f"{inv['attempt_count']}, the first {when(inv['first_failed_at'])}"),
        ("next retry", when(inv["next_attempt_at"]) if inv["next_attempt_at"] else "none"),
        ("next step", f"{when(inv['next_step_at'])} ({inv['steps_done']} done)"),
        ("retries stopped", words(inv["stop_reason"]) if inv["stop_reason"] else "no"),
        ("paid", when(inv["paid_at"]) if inv["paid_at"] else "no"),
    ]


def _report(c: Container, invoice_id: str) -> dict[str, Any]:
    with c.engine.connect() as conn:
        return invoice_history_report(conn, invoice_id)


def _render(
    c: Container, request: Request, invoice_id: str, *, error: str | None, status: int
) -> Response:
    try:
        report = _report(c, invoice_id)
    except NotFound:
        return Response(f"invoice {invoice_id!r} does not exist\n", status_code=404)
    done = request.query_params.get("done")
    token = new_csrf(c)
    response = page(
        "ops_invoice.html",
        status,
        csrf=token,
        invoice_id=invoice_id,
        quoted_id=quote(invoice_id, safe=""),
        summary=_summary(report),
        actions=[(a, LABELS[a]) for a in available(report["invoice"])],
        customer_id=report["customer"]["id"],
        quoted_customer=quote(report["customer"]["id"], safe=""),
        customer_paused=report["customer"]["dunning_paused"],
        history=report["history"],
        when=when,
        notice=DONE.get(done or ""),
        error=error,
        max_reason=MAX_REASON,
    )
    set_csrf_cookie(response, request, token)
    return response


def _act(c: Container, action: str, key: str, reason: str, by: str) -> None:
    if action in CUSTOMER_ACTIONS:
        apply_customer(c, action, key, c.clock.now(), reason=reason, by=by)
    else:
        operator.apply(c, action, key, c.clock.now(), reason=reason, by=by)


def _reason_problem(text: str) -> str | None:
    if not text:
        return "Say why: the reason must not be empty."
    if len(text) > MAX_REASON:
        return f"The reason is too long ({len(text)} characters; at most {MAX_REASON})."
    return None


async def _action(c: Container, request: Request, action: str, key: str) -> Response:
    """Run ``action`` on ``key`` (an invoice, or a customer for a customer action), then show
    the invoice page again: ``invoice`` in the form names it for a customer action."""
    by = ops_user(c, request.headers.get("authorization"))
    if by is None:
        return challenge()
    form = await request.form()
    field, reason, back = form.get("csrf"), form.get("reason"), form.get("invoice", key)
    if not csrf_ok(c, request, field if isinstance(field, str) else None):
        return csrf_refused()
    if action not in (*operator.ACTIONS, *CUSTOMER_ACTIONS) or not isinstance(back, str):
        return Response(f"unknown action {action!r}\n", status_code=404)
    text = reason.strip() if isinstance(reason, str) else ""
    problem, status = _reason_problem(text), 400
    if problem is None:
        try:
            await run_in_threadpool(_act, c, action, key, text, by)
        except NotFound as exc:
            return Response(f"{exc}\n", status_code=404)
        except PermanentError as exc:  # the lifecycle's refusals (InvalidTransition) among them
            problem, status = str(exc), 409
    if problem is not None:
        return await run_in_threadpool(_render, c, request, back, error=problem, status=status)
    log.info("ops: %s %s by %s", action, key, by)
    return RedirectResponse(f"/ops/invoices/{quote(back, safe='')}?done={action}", 303)


def invoice_routes(container: Container) -> list[Route]:
    """``GET /ops/invoices/{id}``, ``POST /ops/invoices/{id}/{action}`` and ``GET
    /ops/find?invoice=…`` (the look-up form on ``/ops``)."""
    c = container

    async def show(request: Request) -> Response:
        if not authorized(c, request.headers.get("authorization")):
            return challenge()
        invoice_id = request.path_params["invoice_id"]
        if len(invoice_id) > MAX_ID:
            return Response("invoice id too long\n", status_code=400)
        return await run_in_threadpool(_render, c, request, invoice_id, error=None, status=200)

    async def act(request: Request) -> Response:
        params = request.path_params
        if params["action"] in CUSTOMER_ACTIONS:
            return Response("a customer action goes to /ops/customers/ID\n", status_code=404)
        return await _action(c, request, params["action"], params["invoice_id"])

    async def act_customer(request: Request) -> Response:
        params = request.path_params
        if params["action"] not in CUSTOMER_ACTIONS:
            return Response(f"unknown action {params['action']!r}\n", status_code=404)
        return await _action(c, request, params["action"], params["customer_id"])

    async def find(request: Request) -> Response:
        if not authorized(c, request.headers.get("authorization")):
            return challenge()
        wanted = (request.query_params.get("invoice") or "").strip()
        if not wanted or len(wanted) > MAX_ID:
            return Response("name an invoice id\n", status_code=400)
        return RedirectResponse(f"/ops/invoices/{quote(wanted, safe='')}", status_code=303)

    return [
        Route("/ops/invoices/{invoice_id}", show, methods=["GET"]),
        Route("/ops/invoices/{invoice_id}/{action}", act, methods=["POST"]),
        Route("/ops/customers/{customer_id}/{action}", act_customer, methods=["POST"]),
        Route("/ops/find", find, methods=["GET"]),
    ]
