"""Gateway webhook receivers: verify the raw body, parse, store once, enqueue after commit.

The answer is fast and says only what happened to the delivery: 200 for accepted, duplicate or
ignored; 400 for a bad signature, a stale timestamp or a malformed body, including a field the
book cannot store (an amount beyond a bigint, a last4 that is not four digits): nothing is
stored, and the log names the field; 413 for a body over the limit; 503 when the database or
the broker is down, so the gateway retries. A body is never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dunning.bootstrap import Container
from dunning.errors import TransientError
from dunning.gateways.cards import scrub_card_data
from dunning.services.events import parse
from dunning.store import inbox
from dunning.store.uow import after_commit, transaction
from dunning.web.webhook_body import BodyTooLarge, decode, read_body, storable
from dunning.webhooks.events import Ignored, MalformedEvent
from dunning.webhooks.quickpay import quickpay_envelope
from dunning.webhooks.signatures import SignatureError, verify_quickpay, verify_stripe
from dunning.webhooks.stripe import stripe_envelope

log = logging.getLogger(__name__)

EVENTS = Counter(
    "dunning_webhook_events_total",
    "Gateway webhook deliveries, by provider, event type and result",
    ["provider", "type", "result"],
)
UNKNOWN_TYPE = "unknown"  # the label of a delivery refused before its type could be trusted
DATABASE_DOWN = inbox.DATABASE_DOWN


class EnqueueFailed(TransientError):
    """The event is stored but its processing could not be enqueued."""


@dataclass(frozen=True, slots=True)
class Receiver:
    provider: str
    verify: Callable[[Container, bytes, Request, datetime], None]
    envelope: Callable[[Mapping[str, Any]], tuple[str, str]]


def _verify_stripe(c: Container, body: bytes, request: Request, now: datetime) -> None:
    verify_stripe(
        body,
        request.headers.get("stripe-signature"),
        [s.get_secret_value() for s in c.settings.stripe.webhook_secrets],
        now_s=now.timestamp(),
        tolerance_s=c.settings.webhook_tolerance_s,
    )


def _verify_quickpay(c: Container, body: bytes, request: Request, now: datetime) -> None:
    key = c.settings.quickpay.private_key
    verify_quickpay(
        body, request.headers.get("quickpay-checksum-sha256"), key.get_secret_value() if key else ""
    )


RECEIVERS = (
    Receiver("stripe", _verify_stripe, stripe_envelope),
    Receiver("quickpay", _verify_quickpay, quickpay_envelope),
)


def store_event(
    c: Container,
    provider: str,
    envelope: tuple[str, str],
    payload: dict[str, Any],
    status: str,
    now: datetime,
) -> str:
    """Store the event once under ``(provider, event_id)``; enqueue it after commit.

    The row is claimed for a lease, so the ``due_events`` producer does not enqueue it a second
    time while its message is on the way; if the enqueue fails, the claim is released.
    """
    event_id, kind = envelope
    lease = now + timedelta(seconds=c.settings.timing.claim_lease_s)
    received = status == "received"
    with transaction(c.engine) as conn:
        row_id = inbox.insert_event(
            conn, (provider, event_id, kind), payload, status, now, lease if received else None
        )
        if row_id is not None and received:
            ids = [row_id]
            after_commit(conn, lambda: _enqueue(c, ids))
    if row_id is None:
        return "duplicate"
    return "accepted" if received else "ignored"


def _enqueue(c: Container, ids: list[int]) -> None:
    try:
        c.dispatcher.process_events(ids)
    # The dispatcher is a port: each broker adapter raises its own transport errors (dramatiq,
    # redis, pika). Any of them means "not enqueued", which the gateway must hear as a 503.
    except Exception as exc:
        inbox.release(c.engine, ids)
        raise EnqueueFailed(f"could not enqueue webhook events {ids}: {exc}") from exc


def _answer(provider: str, kind: str, result: str, status: int, body: dict[str, str]) -> Any:
    EVENTS.labels(provider, kind, result).inc()
    return JSONResponse(body, status_code=status)


def _refuse(provider: str, kind: str, result: str, status: int, reason: str) -> Any:
    log.warning("%s webhook refused with %d (%s): %s", provider, status, result, reason)
    return _answer(provider, kind, result, status, {"error": reason})


def endpoint(c: Container, receiver: Receiver) -> Callable[[Request], Any]:
    provider = receiver.provider

    async def receive(request: Request) -> Any:
        now = c.clock.now()
        try:
            body = await read_body(request, c.settings.webhook_max_body_bytes)
        except BodyTooLarge:
            return _refuse(provider, UNKNOWN_TYPE, "too_large", 413, "body too large")
        except MalformedEvent as exc:
            return _refuse(provider, UNKNOWN_TYPE, "malformed", 400, exc.reason)
        try:
            receiver.verify(c, body, request, now)
        except SignatureError as exc:
            return _refuse(provider, UNKNOWN_TYPE, "bad_signature", 400, exc.reason)
        kind = UNKNOWN_TYPE
        try:
            # Card data a sender put in the payload goes no further than this request.
            payload = scrub_card_data(decode(body))
            raw_id, raw_type = receiver.envelope(payload)
            event_id, kind = storable(raw_id, "id", 128), storable(raw_type, "type", 64)
            events = parse(provider, payload, now)
        except MalformedEvent as exc:
            return _refuse(provider, kind, "malformed", 400, f"malformed event: {exc.reason}")
        status = "ignored" if all(isinstance(e, Ignored) for e in events) else "received"
        try:
            result = await run_in_threadpool(
                store_event, c, provider, (event_id, kind), payload, status, now
            )
        except DATABASE_DOWN as exc:
            log.error("%s webhook %s not stored, database unavailable: %s", provider, event_id, exc)
            return _answer(provider, kind, "unavailable", 503, {"error": "database unavailable"})
        except EnqueueFailed as exc:
            log.error("%s webhook %s stored, not enqueued: %s", provider, event_id, exc)
            return _answer(provider, kind, "unavailable", 503, {"error": "broker unavailable"})
        log.info("%s webhook %s (%s): %s", provider, event_id, kind, result)
        return _answer(provider, kind, result, 200, {"status": result})

    return receive


def routes(c: Container) -> list[Route]:
    """``POST /webhooks/stripe`` and ``POST /webhooks/quickpay``."""
    return [
        Route(f"/webhooks/{r.provider}", endpoint(c, r), methods=["POST"], name=f"{r.provider}")
        for r in RECEIVERS
    ]
