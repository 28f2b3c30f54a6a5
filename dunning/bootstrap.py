"""The one place that wires infrastructure: settings, database, gateway, mail, policy, clock.

Nothing here connects at import time; :func:`bootstrap` builds a :class:`Container` and the
entry points (CLI, workers, scheduler, web, simulation) pass it down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from config.settings import Settings, load_settings
from dunning.clock import Clock, SystemClock
from dunning.ports import Dispatcher, NullDispatcher, WebhookSender
from dunning.store.engine import make_engine

if TYPE_CHECKING:
    from dunning.gateways.base import Gateway
    from dunning.mail.transport import Transport
    from dunning.policy.config import PolicyBook


@dataclass
class Container:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    dispatcher: Dispatcher = field(default_factory=NullDispatcher)
    overrides: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def engine(self) -> Engine:
        if "engine" in self.overrides:
            engine: Engine = self.overrides["engine"]
            return engine
        return make_engine(self.settings.database_url)

    @cached_property
    def gateway(self) -> Gateway:
        if "gateway" in self.overrides:
            gateway: Gateway = self.overrides["gateway"]
            return gateway
        if self.settings.gateway == "stripe":
            from dunning.gateways.stripe import StripeGateway

            stripe: Gateway = StripeGateway.from_settings(self.settings)
            return stripe
        from dunning.gateways.ledger import SqlLedger
        from dunning.gateways.sandbox import SandboxGateway

        return SandboxGateway(
            SqlLedger(self.engine),
            clock=self.clock.now,
            failure_rate=self.settings.sandbox_failure_rate,
            delay_s=self.settings.sandbox_delay_ms / 1000,
        )

    @cached_property
    def policy(self) -> PolicyBook:
        from dunning.policy_file import load_policy_book

        if "policy" in self.overrides:
            book: PolicyBook = self.overrides["policy"]
            return book
        return load_policy_book(self.settings.policy_file)

    @cached_property
    def transport(self) -> Transport:
        if "transport" in self.overrides:
            transport: Transport = self.overrides["transport"]
            return transport
        from dunning.mail.transport import make_transport

        return make_transport(self.settings)

    @cached_property
    def webhook_sender(self) -> WebhookSender:
        if "webhook_sender" in self.overrides:
            sender: WebhookSender = self.overrides["webhook_sender"]
            return sender
        from dunning.webhooks.destinations import endpoint_rules
        from dunning.webhooks.sender import HttpWebhookSender

        return HttpWebhookSender(rules=endpoint_rules(self.settings))

    def close(self) -> None:
        """Release what this container built (not what was handed to it): the mail transport
        (an SMTP connection says QUIT), the gateway's and the webhook sender's clients, the
        database pool."""
        for part in ("transport", "gateway", "webhook_sender"):
            if part in self.__dict__ and part not in self.overrides:
                close = getattr(self.__dict__[part], "close", None)
                if close is not None:
                    close()
        if "engine" in self.__dict__ and "engine" not in self.overrides:
            self.engine.dispose()


def bootstrap(settings: Settings | None = None, **overrides: Any) -> Container:
    """Build the container; ``overrides`` replace parts (``engine``, ``gateway``, ``clock``…)."""
    settings = settings or load_settings()
    clock = overrides.pop("clock", None) or SystemClock()
    dispatcher = overrides.pop("dispatcher", None) or NullDispatcher()
    return Container(settings=settings, clock=clock, dispatcher=dispatcher, overrides=overrides)
