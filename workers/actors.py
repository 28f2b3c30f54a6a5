"""The actors: thin functions that read the clock once and hand each item to a service.

Messages carry ids and attempt numbers only. Each item is idempotent, so a redelivered or
duplicated batch changes nothing. An item that fails for good is logged and skipped; a transient
failure raises, and the whole batch is retried.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from dunning.errors import PermanentError
from dunning.model import Initiator
from dunning.services import charging, outbound_delivery, outbox, purge, resolver, steps
from dunning.services.events import process_event
from dunning.store.inbox import DATABASE_DOWN
from workers import context

log = logging.getLogger(__name__)
T = TypeVar("T")


def _each(
    items: list[T], what: str, fn: Callable[[T], str], *, alone: bool = False
) -> dict[str, int]:
    """``fn`` on each item. With ``alone``, an item's transient error does not stop the items
    after it: the first such error is raised once every item was tried (the batch is retried,
    and finds the others done); only the database being unreachable stops the batch at once."""
    tally: Counter[str] = Counter()
    transient: Exception | None = None
    for item in items:
        try:
            tally[fn(item)] += 1
        except PermanentError as exc:
            log.error("%s %s failed for good: %s", what, item, exc)
            tally["failed"] += 1
        except Exception as exc:
            if not alone or isinstance(exc, DATABASE_DOWN):
                raise  # the database is down: every other item would wait and fail the same way
            log.warning("%s %s not done, tried again later: %s", what, item, exc)
            transient = transient or exc
    if transient is not None:
        raise transient
    return dict(tally)


def charge_retry(items: list[list[Any]]) -> dict[str, int]:
    """Make scheduled charge retries: ``[[invoice_id, attempt_no], ...]``, as one batch."""
    c = context.get()
    orders = [
        charging.ChargeOrder(str(i), Initiator.merchant, "scheduled_retry", attempt_no=int(n))
        for i, n in items
    ]
    return dict(Counter(charging.charge(c, orders, c.clock.now()).values()))


def send_emails(ids: list[int]) -> dict[str, int]:
    """Send queued outbox rows."""
    c = context.get()
    result = outbox.send_notifications(c, ids, c.clock.now())
    return dict(Counter(result.values()))


def run_steps(invoice_ids: list[str]) -> dict[str, int]:
    """Carry out due reminders, final notices and suspensions."""
    c = context.get()
    now = c.clock.now()
    tally: Counter[str] = Counter()
    for invoice_id in invoice_ids:
        for kind in steps.run_due_steps(c, invoice_id, now):
            tally[kind] += 1
    return dict(tally)


def process_events(ids: list[int]) -> dict[str, int]:
    """Apply stored gateway webhook events, each on its own: one that fails for good is marked
    ``failed`` and the next one goes on."""
    c = context.get()
    now = c.clock.now()
    return _each(ids, "event", lambda i: process_event(c, int(i), now), alone=True)


def resolve_attempts(keys: list[str]) -> dict[str, int]:
    """Look up charges whose outcome is unknown; never charge again blind."""
    c = context.get()
    now = c.clock.now()
    return _each(keys, "attempt", lambda k: resolver.resolve_attempt(c, str(k), now))


def purge_tokens(card_ids: list[str]) -> dict[str, int]:
    """Delete card tokens whose retention is over."""
    c = context.get()
    return {"purged": len(purge.purge_tokens(c, card_ids, c.clock.now()))}


def deliver_outbound(ids: list[int]) -> dict[str, int]:
    """Deliver due webhooks to the merchant's endpoints, one attempt each."""
    c = context.get()
    return dict(Counter(outbound_delivery.deliver(c, [int(i) for i in ids]).values()))


# name -> (function, queue, options). Every actor has explicit retries, backoff, age and time
# limits; permanent errors are not retried (dramatiq's defaults retry for about a month).
_COMMON: dict[str, Any] = {
    "max_retries": 5,
    "min_backoff": 1_000,
    "max_backoff": 60_000,
    "max_age": 3_600_000,
    "time_limit": 300_000,
    "throws": (PermanentError,),
}
ACTORS: dict[str, tuple[Callable[..., Any], str, dict[str, Any]]] = {
    "charge_retry": (charge_retry, "charges", _COMMON),
    "send_emails": (send_emails, "emails", _COMMON),
    "run_steps": (run_steps, "steps", _COMMON),
    "process_events": (process_events, "events", _COMMON),
    "resolve_attempts": (resolve_attempts, "maintenance", _COMMON),
    "purge_tokens": (purge_tokens, "maintenance", _COMMON),
    "deliver_outbound": (deliver_outbound, "maintenance", _COMMON),
}
