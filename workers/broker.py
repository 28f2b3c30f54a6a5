"""The one place a dramatiq broker is built and the actors are declared on it.

``stub://`` gives dramatiq's stub broker (the embedded default and unit tests), ``redis://`` the
Redis broker, ``amqp://`` RabbitMQ. The broker is set globally *before* any actor exists, so
nothing falls back to dramatiq's implicit localhost broker.
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

from dunning.bootstrap import Container
from workers import context
from workers.actors import ACTORS
from workers.metrics import PipelineMetrics, tallying

QUEUES = ("charges", "emails", "steps", "events", "maintenance")


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
    url: str, *, prometheus: bool = False, heartbeat_timeout_s: float = 60.0
) -> dramatiq.Broker:
    """A broker for ``url`` with explicit middleware (no implicit defaults).

    ``prometheus`` adds dramatiq's exposition middleware (worker processes only: it serves
    the metrics of every process of a ``dunning worker`` on the metrics port).
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
            middleware=middleware,
            heartbeat_timeout=int(heartbeat_timeout_s * 1000),
            # Maintenance (requeueing a dead worker's unacked messages) runs on 1% of commands
            # instead of dramatiq's 0.1%, so redelivery takes seconds on a quiet broker.
            maintenance_chance=10_000,
        )
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=middleware)
    raise ValueError(f"unsupported broker URL {url!r}")


def declare_actors(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor[Any, Any]]:
    actors = {}
    for name, (fn, queue, options) in ACTORS.items():
        actors[name] = dramatiq.Actor(
            tallying(fn),
            broker=broker,
            actor_name=name,
            queue_name=queue,
            priority=0,
            options=dict(options),
        )
    for queue in QUEUES:
        broker.declare_queue(queue)
    return actors


def setup(container: Container, broker: dramatiq.Broker | None = None) -> dramatiq.Broker:
    """Build (or take) the broker, make it global, declare the actors, and give this process's
    actors their container. Returns the broker."""
    broker = broker or make_broker(
        container.settings.broker_url,
        heartbeat_timeout_s=container.settings.timing.broker_heartbeat_timeout_s,
    )
    dramatiq.set_broker(broker)
    declare_actors(broker)
    context.set_container(container)
    from workers.dispatch import ActorDispatcher

    container.dispatcher = ActorDispatcher(broker)
    return broker
