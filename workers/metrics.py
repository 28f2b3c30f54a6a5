"""Pipeline metrics as a dramatiq middleware: actors return a tally, the middleware counts it.

Nothing in an actor mentions metrics: :func:`tallying` wraps each actor function when the
broker declares it, keeps the tally for the middleware and returns ``None`` to dramatiq (which
has no result backend here). Charge answers are counted where they are applied, by
``dunning.services.counters`` (the core does not import this package).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from prometheus_client import Counter

from dunning import logs

ITEMS = Counter(
    "dunning_items_total",
    "Items handled by the pipeline's actors, by actor and outcome",
    ["actor", "outcome"],
)
MESSAGES = Counter(
    "dunning_messages_total", "Actor messages processed, by actor and result", ["actor", "result"]
)


_current = threading.local()


def tallying(fn: Callable[..., Any]) -> Callable[..., None]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        _current.tally = fn(*args, **kwargs)

    return run


def last_tally() -> Any:
    return getattr(_current, "tally", None)


class PipelineMetrics(Middleware):
    """Counts what actors report; also names the actor and message in every log line."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        logs.context.set({"actor": message.actor_name, "message_id": message.message_id})

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        actor = message.actor_name
        logs.context.set(None)
        if exception is not None:
            MESSAGES.labels(actor, "error").inc()
            return
        MESSAGES.labels(actor, "ok").inc()
        result = last_tally()
        _current.tally = None
        if isinstance(result, dict):
            for outcome, count in result.items():
                if isinstance(count, int):
                    ITEMS.labels(actor, str(outcome)).inc(count)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        MESSAGES.labels(message.actor_name, "skipped").inc()
