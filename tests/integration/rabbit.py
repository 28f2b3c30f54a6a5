"""The shared RabbitMQ node in tests: reach it, give each test queues of its own, clean up.

Tests never break the shared node (127.0.0.1:5672, guest/guest): each pipeline gets a queue
prefix of its own (``DUNNING_QUEUE_PREFIX``), and its queues are deleted afterwards. A test that
must kill or restart a broker starts its own node (``tests/reliability/rabbit_node.py``).
"""

from __future__ import annotations

import uuid

import pika
import pika.exceptions

from tests.services import need
from workers.broker import QUEUES

RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672
RABBIT_URL = f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/%2F"


def need_rabbitmq() -> None:
    """Skip without the shared node (fail when CI=true)."""
    need("RabbitMQ", RABBIT_HOST, RABBIT_PORT)


def new_prefix() -> str:
    """A queue prefix no other test run uses."""
    return "t" + uuid.uuid4().hex[:10]


def queue_names(prefix: str) -> list[str]:
    """Every queue dramatiq declares for the pipeline under ``prefix`` (with delay and dead)."""
    return [f"{prefix}.{q}{suffix}" for q in QUEUES for suffix in ("", ".DQ", ".XQ")]


def delete_queues(url: str, prefix: str) -> int:
    """Delete the pipeline's queues under ``prefix``; return how many existed."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    deleted = 0
    try:
        for name in queue_names(prefix):
            channel = connection.channel()
            try:
                channel.queue_declare(name, passive=True)
            except pika.exceptions.ChannelClosedByBroker:
                continue  # never declared
            channel.queue_delete(name)
            channel.close()
            deleted += 1
    finally:
        connection.close()
    return deleted
