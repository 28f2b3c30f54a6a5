"""A dispatcher that runs the actors in the simulation's own thread, in the order the work was
sent, when the simulation drains it.

The actors are the production ones (``workers.actors``), called with the same batches a broker
would deliver; only the transport between producer and actor is left out. Without a worker
thread, a simulation is deterministic by construction and costs no thread hand-offs, which is
what lets ``dunning whatif`` replay a large book, several policies at once in processes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from workers.actors import ACTORS
from workers.dispatch import DEFAULT_BATCH


class InlineDispatcher:
    """Queues each call as the actor messages a broker would carry; :meth:`drain` runs them."""

    sends = True

    def __init__(self, *, batch: int = DEFAULT_BATCH) -> None:
        self.batch = batch
        self._queue: deque[tuple[str, list[Any]]] = deque()

    def _send(self, actor_name: str, items: Sequence[Any]) -> None:
        items = list(items)
        for start in range(0, len(items), self.batch):
            self._queue.append((actor_name, items[start : start + self.batch]))

    def pending(self) -> int:
        """Messages queued and not yet run."""
        return len(self._queue)

    def drain(self) -> None:
        """Run every queued message, and the messages those send, until none is left."""
        while self._queue:
            actor_name, items = self._queue.popleft()
            ACTORS[actor_name][0](items)

    def retry_charges(self, items: Sequence[tuple[str, int]]) -> None:
        self._send("charge_retry", [[i, n] for i, n in items])

    def send_notifications(self, ids: Sequence[int]) -> None:
        self._send("send_emails", list(ids))

    def run_steps(self, invoice_ids: Sequence[str]) -> None:
        self._send("run_steps", list(invoice_ids))

    def process_events(self, ids: Sequence[int]) -> None:
        self._send("process_events", list(ids))

    def resolve_attempts(self, keys: Sequence[str]) -> None:
        self._send("resolve_attempts", list(keys))

    def purge_tokens(self, payment_method_ids: Sequence[str]) -> None:
        self._send("purge_tokens", list(payment_method_ids))

    def deliver_outbound(self, ids: Sequence[int]) -> None:
        self._send("deliver_outbound", list(ids))
