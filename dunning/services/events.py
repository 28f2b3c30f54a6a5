"""Applying stored gateway webhook events to the book.

Events are stored under ``(provider, event_id)`` before they are acted on; processing re-reads
the row and does nothing when it is no longer ``received``. A webhook about a charge we made is
matched to its attempt by the idempotency key in its metadata, never counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from dunning.gateways.base import ChargeResult, Decline
from dunning.ports import Pipeline
from dunning.services import lifecycle, stripe_records
from dunning.services.attempt_results import apply_answers
from dunning.services.card_confirmed import card_confirmed
from dunning.services.event_failures import describe, fails_for_good
from dunning.services.event_records import ensure_subscription, insert_card
from dunning.services.failures import FailedCharge, record_failure_in
from dunning.store import attempts, inbox, rows
from dunning.store.tables import (
    customers,
    payment_methods,
    subscriptions,
)
from dunning.store.uow import transaction
from dunning.webhooks import events as ev
from dunning.webhooks.quickpay import parse_quickpay
from dunning.webhooks.stripe import parse_stripe

log = logging.getLogger(__name__)


def parse(provider: str, payload: Mapping[Any, Any], received_at: datetime) -> list[ev.Event]:
    """The internal events of a stored payload (raises ``MalformedEvent``)."""
    if provider == "stripe":
        return parse_stripe(payload)
    if provider == "quickpay":
        return parse_quickpay(payload, received_at=received_at)
    raise ev.MalformedEvent(f"provider: unknown provider {provider!r}")


def process_event(c: Pipeline, event_row_id: int, now: datetime) -> str:
    """Apply one stored event; safe to run twice, or twice at once. Returns its new status.

    An event that fails for good (:func:`fails_for_good`) is marked ``failed`` with its error,
    and nothing it would have written is kept; a transient error is raised, the event stays
    ``received`` and is tried again.
    """
    with inbox.held(c.engine, event_row_id) as event:
        row = event.row
        if row is None:
            return "skipped"
        try:
            parsed = parse(row["provider"], row["payload"], row["received_at"])
            applied = [apply(c, e, now) for e in parsed]
        except Exception as exc:
            if not fails_for_good(exc):
                raise
            error = describe(exc)
            log.warning("webhook event %s/%s failed: %s", *_names(row), error)
            event.finish("failed", now, error)
            return "failed"
        if "deferred" in applied:
            # The producer offers it again once the charge in flight on its invoice has had
            # time to be answered or looked up (or the record it names has come in).
            until = now + timedelta(seconds=c.settings.timing.unknown_after_s)
            event.defer(until, "deferred: a charge in flight or its customer")
            log.info(
                "webhook event %s/%s deferred: a charge in flight or its customer", *_names(row)
            )
            return "deferred"
        status = "ignored" if all(a == "ignored" for a in applied) else "processed"
        event.finish(status, now)
        return status


def _names(row: Mapping[Any, Any]) -> tuple[str, str]:
    return row["provider"], row["event_id"]


def apply(c: Pipeline, event: ev.Event, now: datetime) -> str:
    """Act on one internal event; returns a word for what it did."""
    match event:
        case ev.PaymentFailed() | ev.ActionRequired():
            return _failed(c, event, now)
        case ev.InvoicePaid():
            return _paid(c, event, now)
        case ev.SubscriptionChanged() if event.record is not None:
            return stripe_records.apply_subscription(c, event, event.record, now)
        case ev.SubscriptionChanged():
            return _subscription(c, event, now)
        case ev.CustomerChanged():
            return stripe_records.apply_customer(c, event, now)
        case ev.CardAutoUpdated():
            if event.exp_month is None or event.exp_year is None:
                return "ignored"
            changed = lifecycle.card_auto_updated(
                c,
                event.payment_method_ref,
                exp_month=event.exp_month,
                exp_year=event.exp_year,
                last4=event.last4,
                now=now,
            )
            return "card_updated" if changed else "ignored"
        case ev.CardAttached():
            return _attached(c, event, now)
        case ev.CardConfirmed():
            return card_confirmed(c, event, now)
        case ev.CardDetached():
            with c.engine.begin() as conn:
                n = conn.execute(
                    update(payment_methods)
                    .where(
                        payment_methods.c.id == event.payment_method_ref,
                        payment_methods.c.status == "active",
                    )
                    .values(status="removed", is_default=False, updated_at=now)
                ).rowcount
            return "card_removed" if n else "ignored"
    return "ignored"


def _failed(c: Pipeline, event: ev.PaymentFailed | ev.ActionRequired, now: datetime) -> str:
    key = getattr(event, "attempt_key", None)
    if key and _attempt_exists(c, key):
        return "known_attempt"  # our own charge: already counted when we made it
    if event.invoice_ref is None or event.subscription_ref is None:
        return "ignored"
    decline = event.decline
    if isinstance(event, ev.ActionRequired) and not decline.decline_code:
        decline = Decline(decline_code="authentication_required")
    failure = FailedCharge(
        invoice_id=event.invoice_ref,
        subscription_id=event.subscription_ref,
        amount=event.amount,
        currency=event.currency,
        decline=decline,
        occurred_at=min(event.occurred_at, now),
        attempt_key=key,
        stripe_invoice_id=event.invoice_ref if event.provider == "stripe" else None,
    )
    with transaction(c.engine) as conn:  # all of it or nothing: a refused row undoes the rest
        ensure_subscription(conn, event, now)
        return record_failure_in(conn, c, failure, now)


def _paid(c: Pipeline, event: ev.InvoicePaid, now: datetime) -> str:
    if event.attempt_key and _attempt_exists(c, event.attempt_key):
        # Our own charge succeeded: settle its attempt (it may still be unknown to us).
        with transaction(c.engine) as conn:
            apply_answers(conn, c, [(event.attempt_key, ChargeResult("succeeded"))], now)
        return "attempt_settled"
    if event.invoice_ref is None:
        return "ignored"
    # "deferred" while a charge of ours is in flight: its answer comes first.
    return lifecycle.invoice_paid_elsewhere(c, event.invoice_ref, now, source=event.provider)


def _subscription(c: Pipeline, event: ev.SubscriptionChanged, now: datetime) -> str:
    with c.engine.connect() as conn:
        known = rows.find(conn, subscriptions, event.subscription_ref)
    if known is None:
        return "ignored"
    if event.cancelled:
        lifecycle.cancel_subscription(c, event.subscription_ref, now, reason=event.provider)
        return "cancelled"
    values: dict[str, Any] = {"updated_at": now}
    if event.current_period_end:
        values["current_period_end"] = event.current_period_end
    if event.amount is not None:
        values["amount"] = event.amount
    if event.plan:
        values["plan"] = event.plan
    with c.engine.begin() as conn:
        conn.execute(
            update(subscriptions)
            .where(subscriptions.c.id == event.subscription_ref)
            .values(**values)
        )
    return "updated"


def _attached(c: Pipeline, event: ev.CardAttached, now: datetime) -> str:
    card = event.card
    if event.customer_ref is None or not (card.last4 and card.exp_month and card.exp_year):
        return "ignored"
    with c.engine.begin() as conn:
        customer_id = _our_customer(conn, event.provider, event.customer_ref)
        if customer_id is None:
            return "ignored"
        insert_card(conn, event.payment_method_ref, customer_id, card, event.provider, now)
    return "card_added"


def _our_customer(conn: Connection, provider: str, ref: str) -> str | None:
    """Our id of the customer a gateway names: Stripe's ids are mapped
    (``customers.stripe_customer_id``); a customer keyed by the gateway's own id is found too."""
    if provider == "stripe":
        mapped = conn.execute(
            select(customers.c.id).where(customers.c.stripe_customer_id == ref)
        ).scalar()
        if mapped is not None:
            return str(mapped)
    return ref if rows.find(conn, customers, ref) is not None else None


def _attempt_exists(c: Pipeline, key: str) -> bool:
    with c.engine.connect() as conn:
        return attempts.exists(conn, key)
