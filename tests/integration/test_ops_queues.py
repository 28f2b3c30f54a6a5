"""The operator views on real PostgreSQL and a real broker, Redis and RabbitMQ alike:
``dunning queues``, ``dlq`` and ``status`` say what is really in the broker and the database in
the same shapes, a requeued dead letter is processed, ``/ops`` requeues with its button, and
``/metrics`` moves when work is done."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from typing import Any

import dramatiq
import pika
import pytest
from sqlalchemy import func, select
from starlette.exceptions import StarletteDeprecationWarning

from dunning import redis_keys as keys
from dunning.cli.main import main
from dunning.ops import gauges
from dunning.ops.rabbitmq import connection_parameters
from dunning.store.tables import invoices, notifications
from dunning.web.app import create_app
from schedules.producers import due_retries
from tests.integration.conftest import Pipeline
from workers import context

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("broker_name", ["redis", "rabbitmq"]),
]

# The default ops login outside production: /metrics on the public port needs it.
OPS_LOGIN = {
    "Authorization": "Basic " + base64.b64encode(b"ops:dev-insecure-secret-change-me").decode()
}


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def queue_stats(p: Pipeline, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    shown = cli_json(capsys, "queues")
    assert shown["broker"] == p.names.kind
    return {q["queue"]: q for q in shown["queues"]}


def raw(p: Pipeline, queue: str, state: str) -> int:
    """Ready or dead messages of ``queue`` as the broker itself keeps them."""
    if p.names.kind == "redis":
        if state == "ready":
            return int(p.redis.llen(keys.queue(queue, p.ns)))
        return int(p.redis.zcard(keys.dead(queue, p.ns)))
    name = p.names.queue(queue) + (".XQ" if state == "dead" else "")
    connection = pika.BlockingConnection(connection_parameters(p.broker_url))
    try:
        return int(connection.channel().queue_declare(name, passive=True).method.message_count)
    finally:
        connection.close()


def metric(text: str, name: str) -> float:
    """The value of one sample line (``name`` includes its labels)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}")


@pytest.fixture
def env(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    """The CLI in this process reads the same stores as the pipeline."""
    for key, value in pipeline.env.items():
        if key.startswith("DUNNING_"):
            monkeypatch.setenv(key, value)
    # Each scrape reads the broker and the funnel afresh (in production at most every 15 s).
    monkeypatch.setattr(gauges, "READ_MIN_INTERVAL_S", 0.0)
    previous = context._container
    try:
        yield pipeline
    finally:
        context._container = previous


def test_queues_status_dlq_and_metrics_follow_the_real_stores(
    env: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    p = env
    ids = p.seed_due_retries(3)
    with p.broker() as (broker, c):
        outcomes: list[str] = []

        def probe(value: str) -> None:
            if not outcomes:
                outcomes.append("failed " + value)
                raise RuntimeError("probe fails the first time")
            outcomes.append("done " + value)

        dramatiq.Actor(
            probe,
            broker=broker,
            actor_name="ops_probe",
            queue_name=p.names.queue("events"),
            priority=0,
            options={"max_retries": 0},
        )
        context.set_container(c)
        client = TestClient(create_app(c))

        # given: the producer enqueued the 3 due retries (one batch message); nothing runs yet
        assert due_retries(c, c.clock.now()) == 3
        stats = queue_stats(p, capsys)
        assert stats["charges"]["ready"] == raw(p, "charges", "ready") == 1
        assert stats["charges"]["oldest_ready_age_s"] is not None
        assert all(stats[q]["ready"] == 0 for q in ("emails", "steps", "events", "maintenance"))
        status = cli_json(capsys, "status")
        with p.engine.connect() as conn:
            open_n = conn.execute(
                select(func.count()).where(invoices.c.status == "open")
            ).scalar_one()
            pending_mail = conn.execute(
                select(func.count()).where(notifications.c.status == "pending")
            ).scalar_one()
        assert status["stages"]["past_due"] == {"count": open_n, "amounts": {"USD": 4500}}
        assert open_n == 3
        assert status["stages"]["retrying"]["count"] == 3
        assert status["backlogs"]["retries"]["due"] == 3
        assert status["outbox_pending"] == pending_mail
        before = client.get("/metrics", headers=OPS_LOGIN).text
        assert metric(before, 'dunning_queue_messages{queue="charges",state="ready"}') == 1.0
        assert metric(before, 'dunning_funnel_invoices{stage="past_due"}') == 3.0

        # when: a worker charges them, and the probe fails once (no retries: a dead letter)
        broker.actors["ops_probe"].send("x")
        charges, events = p.names.queue("charges"), p.names.queue("events")
        worker = dramatiq.Worker(
            broker, queues={charges, events}, worker_threads=2, worker_timeout=100
        )
        worker.start()
        try:
            broker.join(charges, timeout=60_000)
            broker.join(events, timeout=60_000)
            worker.join()
            p.wait(lambda: p.all_paid(ids), timeout_s=30, what="the retries to be charged")

            # then: the views say what happened
            stats = queue_stats(p, capsys)
            # RabbitMQ does not say over AMQP what workers hold
            in_flight = 0 if p.names.kind == "redis" else None
            assert stats["charges"]["ready"] == 0
            assert stats["charges"]["in_flight"] == in_flight
            assert stats["events"]["dead"] == raw(p, "events", "dead") == 1
            # the receipts were enqueued on "emails", which this worker does not consume
            assert stats["emails"]["ready"] == raw(p, "emails", "ready") >= 1
            (letter,) = cli_json(capsys, "dlq", "list", "--queue", "events")["dead_letters"]
            assert (letter["actor"], letter["args"], letter["queue"]) == (
                "ops_probe",
                "x",
                "events",
            )
            status = cli_json(capsys, "status")
            assert status["stages"]["past_due"]["count"] == 0
            assert status["stages"]["recovered_30d"] == {"count": 3, "amounts": {"USD": 4500}}
            after = client.get("/metrics", headers=OPS_LOGIN).text
            assert metric(after, 'dunning_funnel_invoices{stage="past_due"}') == 0.0
            assert metric(after, 'dunning_funnel_invoices{stage="recovered_30d"}') == 3.0
            assert metric(after, 'dunning_queue_messages{queue="charges",state="ready"}') == 0.0
            assert metric(after, 'dunning_queue_messages{queue="events",state="dead"}') == 1.0
            paid = 'dunning_items_total{actor="charge_retry",outcome="succeeded"}'
            assert metric(after, paid) - _or_zero(before, paid) == 3.0

            # when: the dead letter is requeued, the worker processes it again
            assert cli_json(capsys, "dlq", "requeue", "--actor", "ops_probe") == {"requeued": 1}
            broker.join(events, timeout=60_000)
            worker.join()
        finally:
            worker.stop()
        assert outcomes == ["failed x", "done x"]
        assert queue_stats(p, capsys)["events"]["dead"] == 0
        assert cli_json(capsys, "dlq", "list")["dead_letters"] == []


def _or_zero(text: str, name: str) -> float:
    try:
        return metric(text, name)
    except AssertionError:
        return 0.0


def test_ops_page_requeues_a_dead_letter_with_its_button(
    env: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    p = env
    with p.broker() as (broker, c):
        calls: list[str] = []

        def fails(value: str) -> None:
            calls.append(value)
            raise RuntimeError("always")

        dramatiq.Actor(
            fails,
            broker=broker,
            actor_name="ops_fails",
            queue_name=p.names.queue("maintenance"),
            priority=0,
            options={"max_retries": 0},
        )
        broker.actors["ops_fails"].send("y")
        maintenance = p.names.queue("maintenance")
        worker = dramatiq.Worker(broker, queues={maintenance}, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            broker.join(maintenance, timeout=60_000)
            worker.join()
            (letter,) = cli_json(capsys, "dlq", "list")["dead_letters"]
            password = c.settings.ops.password.get_secret_value()
            client = TestClient(create_app(c), base_url="http://testserver")
            page = client.get("/ops", auth=(c.settings.ops.username, password))
            assert page.status_code == 200
            assert letter["id"] in page.text
            token = client.cookies.get("dunning_ops_csrf")
            response = client.post(
                "/ops/dlq/requeue",
                auth=(c.settings.ops.username, password),
                data={"csrf": token, "queue": "maintenance", "id": letter["id"]},
                follow_redirects=False,
            )
            assert response.status_code == 303
            assert response.headers["location"] == "/ops"
            broker.join(maintenance, timeout=60_000)
            worker.join()
        finally:
            worker.stop()
    assert calls == ["y", "y"]  # processed again (and, failing again, dead again)
    (again,) = cli_json(capsys, "dlq", "list")["dead_letters"]
    assert again["id"] == letter["id"]
