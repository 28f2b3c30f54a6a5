"""The core's :class:`~dunning.ports.Dispatcher`, implemented with actor messages.

Work is sent in batches: one message carries up to ``batch`` ids, so a producer that found
10,000 due invoices sends 100 messages, not 10,000.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dramatiq

DEFAULT_BATCH = 50


class ActorDispatcher:
    sends = True

    def __init__(self, broker: dramatiq.Broker, *, batch: int = DEFAULT_BATCH) -> None:
        self.broker = broker
        self.batch = batch

    def _send(self, actor_name: str, items: Sequence[Any]) -> int:
        actor = self.broker.get_actor(actor_name)
        items = list(items)
        sent = 0
        for start in range(0, len(items), self.batch):
            self.broker.enqueue(actor.message(items[start : start + self.batch]))
            sent += 1
        return sent

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
        if "deliver_outbound" in self.broker.get_declared_actors():
            self._send("deliver_outbound", list(ids))
