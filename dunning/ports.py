"""Ports: what the services need from the outside world, as small protocols.

The services take a :class:`Pipeline` (the container of ``dunning.bootstrap`` is one) and never
import the container, dramatiq, an HTTP client or a concrete gateway. ``workers.dispatch``
implements :class:`Dispatcher` with actors; the simulation and unit tests use the same
implementation on the stub broker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from config.settings import Settings
    from dunning.clock import Clock
    from dunning.gateways.base import Gateway
    from dunning.mail.transport import Transport
    from dunning.policy.config import PolicyBook


class Pipeline(Protocol):
    """What a service may use: settings, clock, database, gateway, mail, policy, the
    dispatcher that enqueues follow-up work, and the merchant's webhook delivery."""

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def dispatcher(self) -> Dispatcher: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def gateway(self) -> Gateway: ...

    @property
    def policy(self) -> PolicyBook: ...

    @property
    def transport(self) -> Transport: ...

    @property
    def webhook_sender(self) -> WebhookSender: ...


class WebhookSender(Protocol):
    """Delivers one signed webhook to a merchant's endpoint."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body`` to ``url``; return the HTTP status. Raise ``TransientError`` when the
        endpoint could not be reached (a refused or cut connection, a time-out)."""
        ...


class Dispatcher(Protocol):
    # Whether work handed over is on its way at once. A service that sends work itself claims
    # it (so the producers do not send it again) only when it is.
    sends: bool

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

    sends = False

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
