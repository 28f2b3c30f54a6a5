"""A dispatcher that holds what the simulation's own thread sends until that work is done.

In production an event's follow-up work (the email a new card triggers, say) runs in another
process while the event's own work goes on; either may write first. The simulation's worker is a
thread, and letting it race the main thread would make the journal's order (the audit log's)
change from run to run. Holding the main thread's messages until its work is finished picks one
of production's orders, always the same one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dunning.ports import Dispatcher


class HeldDispatcher:
    """Wraps a :class:`Dispatcher`; calls from inside :meth:`holding` wait for its end."""

    def __init__(self, inner: Dispatcher) -> None:
        self.inner = inner
        self._owner: int | None = None
        self._held: list[tuple[str, tuple[Any, ...]]] = []

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold this thread's messages while the block runs; send them, in order, after it."""
        self._owner = threading.get_ident()
        try:
            yield
        finally:
            self._owner = None
            held, self._held = self._held, []
            for name, args in held:
                getattr(self.inner, name)(*args)

    def _call(self, name: str, *args: Any) -> None:
        if self._owner == threading.get_ident():
            self._held.append((name, args))
        else:
            getattr(self.inner, name)(*args)

    def retry_charges(self, items: Sequence[tuple[str, int]]) -> None:
        self._call("retry_charges", list(items))

    def send_notifications(self, ids: Sequence[int]) -> None:
        self._call("send_notifications", list(ids))

    def run_steps(self, invoice_ids: Sequence[str]) -> None:
        self._call("run_steps", list(invoice_ids))

    def process_events(self, ids: Sequence[int]) -> None:
        self._call("process_events", list(ids))

    def resolve_attempts(self, keys: Sequence[str]) -> None:
        self._call("resolve_attempts", list(keys))

    def purge_tokens(self, payment_method_ids: Sequence[str]) -> None:
        self._call("purge_tokens", list(payment_method_ids))

    def deliver_outbound(self, ids: Sequence[int]) -> None:
        self._call("deliver_outbound", list(ids))
