"""The names a deployment uses on its broker, so that deployments sharing one broker never take
each other's messages.

Every queue of a deployment carries its *queue prefix* (``DUNNING_QUEUE_PREFIX``; unset, it is
derived from the database name, since a deployment is its database):

- on Redis the prefix picks dramatiq's key namespace, ``dramatiq:<prefix>``: queues, delayed and
  dead messages, acknowledgements and worker heartbeats all live under it;
- on RabbitMQ it starts every queue name: ``<prefix>.charges``, with dramatiq's delay and dead
  letter queues ``<prefix>.charges.DQ`` and ``<prefix>.charges.XQ``;
- the in-process stub broker needs none.

An empty prefix gives the unprefixed names of earlier versions (namespace ``dramatiq``, queue
``charges``): set ``DUNNING_QUEUE_PREFIX=`` to keep a deployment's queues across an upgrade.
Operators and the CLI always speak of the plain names (``--queue charges``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from config.settings import Settings

# The pipeline's queues, by the names operators use.
QUEUES = ("charges", "emails", "steps", "events", "maintenance")
# dramatiq's default Redis namespace: the layout of a deployment without a prefix.
DRAMATIQ_NAMESPACE = "dramatiq"
FALLBACK_PREFIX = "dunning"
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]")


def prefix_from_database(database_url: str) -> str:
    """The default prefix: the database's name (a SQLite file's stem), made a valid name."""
    try:
        url = make_url(database_url)
    except ArgumentError:  # not a URL SQLAlchemy can read: the fallback name
        return FALLBACK_PREFIX
    name = url.database or ""
    if url.get_backend_name() == "sqlite":
        name = PurePath(name).stem if name and name != ":memory:" else ""
    name = _NOT_ALLOWED.sub("_", name)[:63]
    if not name:
        return FALLBACK_PREFIX
    # dramatiq's queue names start with a letter or an underscore.
    return name if re.match(r"[A-Za-z_]", name) else ("_" + name)[:63]


def broker_kind(broker_url: str) -> str:
    """``stub``, ``redis`` or ``rabbitmq``."""
    if broker_url.startswith(("redis://", "rediss://")):
        return "redis"
    if broker_url.startswith(("amqp://", "amqps://")):
        return "rabbitmq"
    return "stub"


@dataclass(frozen=True, slots=True)
class BrokerNames:
    """Where this deployment's queues live on its broker."""

    kind: str  # stub, redis or rabbitmq
    prefix: str

    @classmethod
    def for_settings(cls, settings: Settings) -> BrokerNames:
        prefix = settings.queue_prefix
        if prefix is None:
            prefix = prefix_from_database(settings.database_url)
        return cls(broker_kind(settings.broker_url), prefix)

    @property
    def redis_namespace(self) -> str:
        """dramatiq's Redis key namespace for this deployment."""
        return f"{DRAMATIQ_NAMESPACE}:{self.prefix}" if self.prefix else DRAMATIQ_NAMESPACE

    def queue(self, name: str) -> str:
        """The broker's name of the queue operators call ``name``."""
        if self.kind == "rabbitmq" and self.prefix:
            return f"{self.prefix}.{name}"
        return name

    def queues(self, names: tuple[str, ...] = QUEUES) -> dict[str, str]:
        """``{name: the broker's name}`` for ``names``."""
        return {name: self.queue(name) for name in names}
