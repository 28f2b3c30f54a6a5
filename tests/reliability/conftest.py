"""Fixtures of the fault-injection runs: the integration fixtures (a scratch PostgreSQL
database, real ``dunning`` daemons, the :class:`Pipeline` helper) on a broker and an SMTP
server the test may break, and helpers that wait for a run while checking the daemons are
alive.

The broker, by ``broker_name``: ``redis`` (the default), a ``redis-server`` of the test's own;
``rabbitmq``, the shared RabbitMQ node under a queue prefix of the test's own (for faults that
leave the broker alone); ``rabbitmq-node``, a RabbitMQ node of the test's own, which it may
kill and restart. The shared Redis on 127.0.0.1:6379 is not used here: a run on it could meet
another test run's workers or scheduler on the same database number; the shared RabbitMQ node
is never stopped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import (  # noqa: F401  fixtures and the report hook, reused
    FAST_TIMING,
    MAIL_FROM,
    MailSink,
    broker_name,
    broker_redis,
    module_pg_url,
    pg_engine,
    pipeline,
    pytest_runtest_makereport,
    rabbit_prefix,
)
from tests.integration.rabbit import RABBIT_URL
from tests.reliability.rabbit_node import RabbitNode
from tests.reliability.servers import RedisServer, SmtpServer
from tests.services import free_port

# Leases long enough that a batch of 50 emails is sent within one on a loaded machine, short
# enough that work whose message was lost is found again within seconds. Unknown charges are
# looked up only when no charge can still be running (the sandbox answers within a second).
RELIABILITY_TIMING = {
    "DUNNING_TIMING__CLAIM_LEASE_S": "8",
    "DUNNING_TIMING__WORK_LEASE_S": "8",
    "DUNNING_TIMING__UNKNOWN_AFTER_S": "4",
    "DUNNING_TIMING__GATEWAY_TIMEOUT_S": "1",
    "DUNNING_TIMING__MAIL_RETRY_BASE_S": "1",
    "DUNNING_TIMING__MAIL_RETRY_MAX_S": "4",
    "DUNNING_TIMING__SCAN_BATCH": "200",
}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A ``redis-server`` of this test alone, append-only, in a temporary directory."""
    server = RedisServer(tmp_path / "redis", appendonly=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_rabbitmq(tmp_path: Path) -> Iterator[RabbitNode]:
    """A RabbitMQ node of this test alone, in a temporary directory."""
    node = RabbitNode(tmp_path / "rabbitmq")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def rdb(own_redis: RedisServer) -> Iterator[redis.Redis]:
    """The inspecting client of :class:`Pipeline`, on the test's own Redis."""
    client = own_redis.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> tuple[int, MailSink]:
    """The integration fixtures' SMTP server, replaced by one the test can stop and start."""
    return smtp_server.port, smtp_server.sink


@pytest.fixture
def pipeline_env(
    module_pg_url: str,  # noqa: F811  (the imported fixture, requested by name)
    smtp_server: SmtpServer,
    tmp_path: Path,
    broker_name: str,  # noqa: F811
    request: pytest.FixtureRequest,
) -> dict[str, str]:
    """The daemons' environment: the integration runs' short intervals, these leases, the
    test's own SMTP server and the broker ``broker_name`` says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env |= FAST_TIMING | RELIABILITY_TIMING
    env |= {
        "DUNNING_DATABASE_URL": module_pg_url,
        "DUNNING_SMTP__HOST": "127.0.0.1",
        "DUNNING_SMTP__PORT": str(smtp_server.port),
        "DUNNING_SMTP__TIMEOUT_S": "5",
        "DUNNING_MAIL_FROM": MAIL_FROM,
        "DUNNING_OUTBOX_DIR": str(tmp_path / "outbox"),
        "DUNNING_METRICS_PORT": str(free_port()),
        "DUNNING_LOG_FORMAT": "json",
        "DUNNING_LOG_LEVEL": "INFO",
    }
    if broker_name == "rabbitmq":
        prefix = request.getfixturevalue("rabbit_prefix")
        return env | {"DUNNING_BROKER_URL": RABBIT_URL, "DUNNING_QUEUE_PREFIX": prefix}
    if broker_name == "rabbitmq-node":
        return env | {"DUNNING_BROKER_URL": request.getfixturevalue("own_rabbitmq").url}
    return env | {"DUNNING_BROKER_URL": request.getfixturevalue("own_redis").url}


@pytest.fixture
def web_port() -> int:
    """The port ``dunning web`` listens on in the tests that start it."""
    return free_port()
