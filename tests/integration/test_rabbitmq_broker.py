"""The same actors on RabbitMQ when the broker URL says amqp://, and ``dunning check`` logging
in to it (a wrong password or virtual host fails the check, not only a closed port)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import insert, select

from config.settings import load_settings
from dunning.bootstrap import bootstrap
from dunning.cli.main import main
from dunning.clock import VirtualClock
from dunning.gateways.base import Decline
from dunning.gateways.ledger import MemoryLedger
from dunning.gateways.sandbox import SandboxGateway
from dunning.mail.transport import MemoryTransport
from dunning.services.failures import FailedCharge, record_failure
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from dunning.store.tables import customers, invoices, payment_methods, subscriptions
from schedules.producers import due_retries
from tests.services import need
from workers.broker import make_broker, setup

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def test_retry_runs_through_rabbitmq(tmp_path: Path) -> None:
    need("RabbitMQ", "127.0.0.1", 5672)
    pytest.importorskip("pika")
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'r.sqlite3'}")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    clock = VirtualClock(NOW)
    gateway = SandboxGateway(MemoryLedger(), clock=clock.now)
    c = bootstrap(
        settings, clock=clock, engine=engine, gateway=gateway, transport=MemoryTransport()
    )
    broker = make_broker("amqp://guest:guest@127.0.0.1:5672/")
    setup(c, broker)
    # Private queue names so parallel runs and other projects on the server never mix.
    suffix = uuid.uuid4().hex[:8]
    actor = broker.get_actor("charge_retry")
    actor.queue_name = f"charges-{suffix}"
    broker.declare_queue(actor.queue_name)
    ts = {"created_at": NOW, "updated_at": NOW}
    with engine.begin() as conn:
        conn.execute(insert(customers).values(id="c1", email="c1@example.com", **ts))
        conn.execute(
            insert(payment_methods).values(
                id="pm1",
                customer_id="c1",
                gateway="sandbox",
                token="sbx_ok_1",
                last4="4242",
                exp_month=1,
                exp_year=2030,
                is_default=True,
                **ts,
            )
        )
        conn.execute(
            insert(subscriptions).values(
                id="s1",
                customer_id="c1",
                plan="p",
                amount=900,
                currency="EUR",
                payment_method_id="pm1",
                **ts,
            )
        )
    record_failure(
        c, FailedCharge("in1", "s1", 900, "EUR", Decline("insufficient_funds", "51"), NOW), NOW
    )
    clock.set(NOW + timedelta(days=2))
    worker = dramatiq.Worker(broker, worker_threads=1, queues={actor.queue_name})
    worker.start()
    try:
        assert due_retries(c, clock.now()) == 1
        broker.join(actor.queue_name, timeout=30_000)
        worker.join()
    finally:
        worker.stop()
        for queue in list(broker.queues):
            if queue.startswith(actor.queue_name):
                broker.channel.queue_delete(queue)
        broker.close()
    with engine.connect() as conn:
        assert conn.execute(select(invoices.c.status)).scalar_one() == "paid"
    assert len(gateway.ledger.entries()) == 1
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "ok", "reason"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", True, ""),
        ("amqp://guest:wrong@127.0.0.1:5672/%2F", False, "ACCESS_REFUSED"),
        ("amqp://guest:guest@127.0.0.1:5672/no-such-vhost", False, "vhost no-such-vhost not found"),
    ],
)
def test_dunning_check_logs_in_to_rabbitmq(
    url: str,
    ok: bool,
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    need("RabbitMQ", "127.0.0.1", 5672)
    monkeypatch.setenv("DUNNING_BROKER_URL", url)
    main(["check", "--json"])
    broker = json.loads(capsys.readouterr().out)["broker"]
    assert broker["ok"] is ok
    assert reason in broker["detail"]
    assert "wrong" not in broker["detail"]
