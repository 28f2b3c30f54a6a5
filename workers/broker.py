"""The one place a dramatiq broker is built and the actors are declared on it.

``stub://`` gives dramatiq's stub broker (the embedded default and unit tests), ``redis://`` the
Redis broker, ``amqp://`` RabbitMQ. The broker is set globally *before* any actor exists, so
nothing falls back to dramatiq's implicit localhost broker. The deployment's queues are named
by :mod:`dunning.broker_names` (its Redis namespace, its RabbitMQ queue names), so
deployments sharing a broker never take each other's messages.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from config.settings import Settings
from dunning.bootstrap import Container
from dunning.broker_names import DRAMATIQ_NAMESPACE, QUEUES, BrokerNames
from workers import context
from workers.actors import ACTORS
from workers.metrics import PipelineMetrics, tallying

__all__ = ["QUEUES", "broker_for", "declare_actors", "make_broker", "setup"]


def _middleware() -> list[Any]:
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(),
        PipelineMetrics(),
    ]


def make_broker(
    url: str,
    *,
    prometheus: bool = False,
    heartbeat_timeout_s: float = 60.0,
    redis_namespace: str = DRAMATIQ_NAMESPACE,
) -> dramatiq.Broker:
    """A broker for ``url`` with explicit middleware (no implicit defaults).

    ``prometheus`` adds dramatiq's exposition middleware (worker processes only: it serves
    the metrics of every process of a ``dunning worker`` on the metrics port).
    ``redis_namespace`` prefixes every key of a Redis broker (:func:`broker_for` gives the
    deployment's).
    """
    middleware = _middleware()
    if prometheus:
        from dramatiq.middleware.prometheus import Prometheus

        middleware.append(Prometheus())
    if url.startswith("stub://"):
        return StubBroker(middleware=middleware)
    if url.startswith(("redis://", "rediss://")):
        import redis
        from dramatiq.brokers.redis import RedisBroker

        # Blocking reads need no socket timeout (redis-py 8 defaults to 5 s).
        client = redis.Redis.from_url(url, socket_timeout=None, socket_connect_timeout=5)
        return RedisBroker(  # type: ignore[no-untyped-call]
            client=client,
            namespace=redis_namespace,
            middleware=middleware,
            heartbeat_timeout=int(heartbeat_timeout_s * 1000),
            # Maintenance (requeueing a dead worker's unacked messages) runs on 1% of commands
            # instead of dramatiq's 0.1%, so redelivery takes seconds on a quiet broker.
            maintenance_chance=10_000,
        )
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Confirmed publishes: an enqueue returns once RabbitMQ has the message (a lost one
        # raises, instead of vanishing until its claim's lease runs out), and a queue deleted
        # under a running process is declared again.
        return RabbitmqBroker(url=url, middleware=middleware, confirm_delivery=True)
    raise ValueError(f"unsupported broker URL {url!r}")


def declare_actors(
    broker: dramatiq.Broker, names: BrokerNames | None = None
) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare every actor on ``broker``, on the deployment's queues (``names``; default the
    plain names)."""
    names = names or BrokerNames("stub", "")
    actors = {}
    for name, (fn, queue, options) in ACTORS.items():
        actors[name] = dramatiq.Actor(
            tallying(fn),
            broker=broker,
            actor_name=name,
            queue_name=names.queue(queue),
            priority=0,
            options=dict(options),
        )
    for queue in QUEUES:
        broker.declare_queue(names.queue(queue))
    return actors


def broker_for(settings: Settings, *, prometheus: bool = False) -> dramatiq.Broker:
    """The deployment's broker, as its settings describe it."""
    return make_broker(
        settings.broker_url,
        prometheus=prometheus,
        heartbeat_timeout_s=settings.timing.broker_heartbeat_timeout_s,
        redis_namespace=BrokerNames.for_settings(settings).redis_namespace,
    )


def setup(container: Container, broker: dramatiq.Broker | None = None) -> dramatiq.Broker:
    """Build (or take) the broker, make it global, declare the actors, and give this process's
    actors their container. Returns the broker."""
    broker = broker or broker_for(container.settings)
    dramatiq.set_broker(broker)
    declare_actors(broker, BrokerNames.for_settings(container.settings))
    context.set_container(container)
    from workers.dispatch import ActorDispatcher

    container.dispatcher = ActorDispatcher(broker)
    return broker
