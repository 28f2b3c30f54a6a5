"""Ports the core calls and adapters implement: how the core asks for work to be done later.

The core never imports dramatiq. ``workers.dispatch`` implements :class:`Dispatcher` with
actors; the simulation and unit tests use the same implementation on the stub broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Dispatcher(Protocol):
    def retry_charges(self, items: Sequence[tuple[str, int]]) -> None:
        """Enqueue ``(invoice_id, attempt_no)`` charge retries, in bulk."""
        ...

    def send_notifications(self, ids: Sequence[int]) -> None:
        """Enqueue outbox rows for sending, in bulk."""
        ...

    def run_steps(self, invoice_ids: Sequence[str]) -> None:
        """Enqueue the due lifecycle steps (reminder, final notice, suspension) of invoices."""
        ...

    def process_events(self, ids: Sequence[int]) -> None:
        """Enqueue stored gateway webhook events for processing."""
        ...

    def resolve_attempts(self, keys: Sequence[str]) -> None:
        """Enqueue look-ups of charges whose outcome is unknown."""
        ...

    def purge_tokens(self, payment_method_ids: Sequence[str]) -> None:
        """Enqueue token deletions."""
        ...

    def deliver_outbound(self, ids: Sequence[int]) -> None:
        """Enqueue deliveries of webhooks to the merchant's endpoints."""
        ...


class NullDispatcher:
    """Enqueues nothing: the producers find the work on their next scan."""

    def retry_charges(self, items: Sequence[tuple[str, int]]) -> None:
        return None

    def send_notifications(self, ids: Sequence[int]) -> None:
        return None

    def run_steps(self, invoice_ids: Sequence[str]) -> None:
        return None

    def process_events(self, ids: Sequence[int]) -> None:
        return None

    def resolve_attempts(self, keys: Sequence[str]) -> None:
        return None

    def purge_tokens(self, payment_method_ids: Sequence[str]) -> None:
        return None

    def deliver_outbound(self, ids: Sequence[int]) -> None:
        return None
