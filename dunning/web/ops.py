"""The operators' routes: ``/ops`` (HTTP Basic) and the pipeline gauges behind ``/metrics``.

``/ops`` shows the queues, the funnel, recent failures and the dead letters, each with a
requeue button that POSTs a CSRF token (:mod:`dunning.web.ops_auth`).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dunning.bootstrap import Container
from dunning.broker_names import QUEUES
from dunning.mail.formatting import money
from dunning.ops import gauges, overpayments
from dunning.ops.brokers import BrokerUnavailable, reading
from dunning.ops.failures import recent_failures
from dunning.ops.funnel import NO_LEADER, funnel, stage_rows
from dunning.ops.present import count, duration
from dunning.web.ops_auth import (
    authorized,
    challenge,
    csrf_ok,
    csrf_refused,
    new_csrf,
    set_csrf_cookie,
)
from dunning.web.render import page

log = logging.getLogger(__name__)

RECENT = 20
RABBITMQ_NOTE = (
    "RabbitMQ: messages workers hold (in flight) are not visible over AMQP; its management "
    "UI shows them"
)


def refresh_gauges(container: Container) -> None:
    """Update the queue-depth, funnel and lag gauges before ``/metrics`` is rendered."""
    gauges.refresh(container, QUEUES, container.clock.now())


# -- the page ----------------------------------------------------------------------------------


def _broker_view(c: Container, now_ms: int) -> dict[str, Any]:
    try:
        with reading(c.settings) as view:
            if view is None:
                return {"note": "stub broker: no queue data here", "queues": [], "dead": []}
            kind = view.kind
            stats = view.queues(QUEUES, now_ms=now_ms)
            dead = view.dead(QUEUES, now_ms=now_ms)[-100:]
    except BrokerUnavailable as exc:
        return {"note": f"broker unreachable: {exc}", "queues": [], "dead": []}
    return {
        "note": RABBITMQ_NOTE if kind == "rabbitmq" else None,
        "queues": [
            s.as_dict()
            | {
                "oldest": duration(s.oldest_ready_age_s),
                "in_flight": count(s.in_flight),
                "orphaned": count(s.orphaned),
            }
            for s in stats
        ],
        "dead": [d.as_dict(now_ms) | {"age": duration(d.age_s(now_ms))} for d in dead],
    }


def _refund_row(o: overpayments.Overpayment) -> dict[str, Any]:
    return {
        "id": o.id,
        "invoice_id": o.invoice_id,
        "amount_text": money(o.amount, o.currency, "en"),
        "why": "paid twice" if o.reason == "paid_twice" else f"invoice {o.invoice_status}",
        "charge": o.gateway_charge_id or o.attempt_key or "",
        "found": o.found_at.isoformat(timespec="seconds"),
    }


def _view(c: Container) -> dict[str, Any]:
    now = c.clock.now()
    with c.engine.connect() as conn:
        f = funnel(conn, c.policy, now)
        refunds = [_refund_row(o) for o in overpayments.listed(conn, limit=50)]
        failures = recent_failures(conn, RECENT)
    return {
        "refunds": refunds,
        "now": now,
        "broker": _broker_view(c, int(now.timestamp() * 1000)),
        "stages": stage_rows(f),
        "suspended": f.suspended_subscriptions,
        "backlogs": [(k, b.due, duration(b.lag_s)) for k, b in f.backlogs.items()],
        "failures": failures,
        "leader": f.scheduler.describe() if f.scheduler else NO_LEADER,
    }


def ops_routes(container: Container) -> list[Any]:
    """``GET /ops`` and ``POST /ops/dlq/requeue``, both behind HTTP Basic."""
    c = container

    async def ops_page(request: Request) -> Response:
        if not authorized(c, request.headers.get("authorization")):
            return challenge()
        view = await run_in_threadpool(_view, c)
        token = new_csrf(c)
        response = page("ops.html", csrf=token, **view)
        set_csrf_cookie(response, request, token)
        return response

    async def requeue(request: Request) -> Response:
        if not authorized(c, request.headers.get("authorization")):
            return challenge()
        form = await request.form()
        field = form.get("csrf")
        if not csrf_ok(c, request, field if isinstance(field, str) else None):
            return csrf_refused()
        queue, message = form.get("queue"), form.get("id")
        if not isinstance(queue, str) or queue not in QUEUES or not isinstance(message, str):
            return Response("unknown queue or message\n", status_code=400)
        if c.settings.broker_url.startswith("stub://"):
            return Response("the stub broker keeps no dead letters here\n", status_code=400)
        try:
            moved = await run_in_threadpool(_requeue_one, c, queue, message)
        except BrokerUnavailable as exc:
            return Response(f"{exc}\n", status_code=503)
        log.info("ops: dead letter %s on %s requeued (%d moved)", message, queue, moved)
        return RedirectResponse("/ops", status_code=303)

    return [
        Route("/ops", ops_page, methods=["GET"]),
        Route("/ops/dlq/requeue", requeue, methods=["POST"]),
    ]


def _requeue_one(c: Container, queue: str, message_id: str) -> int:
    now_ms = int(c.clock.now().timestamp() * 1000)
    with reading(c.settings) as view:
        return view.requeue([queue], ids=[message_id], now_ms=now_ms) if view else 0
