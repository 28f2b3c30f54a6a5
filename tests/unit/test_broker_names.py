"""Where a deployment's queues live on a shared broker: the prefix from the database name or
the setting, the Redis namespace and the RabbitMQ queue names it gives."""

from __future__ import annotations

import pytest
from dramatiq.brokers.stub import StubBroker

from config.settings import load_settings
from dunning.broker_names import BrokerNames, prefix_from_database
from dunning.errors import ConfigError
from workers.broker import declare_actors


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        ("postgresql://dunning@db.internal:5432/billing_eu", "billing_eu"),
        ("postgresql+psycopg://u:p@127.0.0.1/acme-prod", "acme-prod"),
        ("postgresql://127.0.0.1/shop.de", "shop_de"),  # no dots: they end RabbitMQ names
        ("postgresql://127.0.0.1/2026books", "_2026books"),  # names start with a letter or _
        ("postgresql://127.0.0.1/", "dunning"),
        ("sqlite:///./var/dunning.sqlite3", "dunning"),
        ("sqlite:////srv/data/tenant one.db", "tenant_one"),
        ("sqlite://", "dunning"),
        ("not a url", "dunning"),
    ],
)
def test_the_default_prefix_is_the_database_name(url: str, prefix: str) -> None:
    assert prefix_from_database(url) == prefix


def test_an_explicit_prefix_wins_and_an_empty_one_keeps_the_old_names() -> None:
    pg = "postgresql://127.0.0.1/billing"
    derived = BrokerNames.for_settings(load_settings(database_url=pg, broker_url="amqp://h/"))
    assert (derived.kind, derived.prefix) == ("rabbitmq", "billing")
    assert derived.queue("charges") == "billing.charges"
    explicit = load_settings(database_url=pg, broker_url="redis://h/0", queue_prefix="eu-1")
    assert BrokerNames.for_settings(explicit).redis_namespace == "dramatiq:eu-1"
    legacy = BrokerNames.for_settings(
        load_settings(database_url=pg, broker_url="amqp://h/", queue_prefix="")
    )
    assert legacy.queue("charges") == "charges"
    assert BrokerNames("redis", "").redis_namespace == "dramatiq"


def test_redis_and_the_stub_keep_plain_queue_names() -> None:
    assert BrokerNames("redis", "billing").queue("emails") == "emails"
    assert BrokerNames("stub", "billing").queue("emails") == "emails"


@pytest.mark.parametrize("bad", ["has.dot", "1starts-with-digit", "sp ace", "x" * 64, "ä"])
def test_a_bad_prefix_stops_start_up_naming_the_variable(bad: str) -> None:
    with pytest.raises(ConfigError, match="DUNNING_QUEUE_PREFIX"):
        load_settings(queue_prefix=bad)


def test_actors_are_declared_on_the_deployments_queues() -> None:
    broker = StubBroker()
    actors = declare_actors(broker, BrokerNames("rabbitmq", "billing"))
    assert actors["charge_retry"].queue_name == "billing.charges"
    assert {a.queue_name for a in actors.values()} <= broker.get_declared_queues()
    assert "charges" not in broker.get_declared_queues()
