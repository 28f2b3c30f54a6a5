"""The pipeline on its in-memory twins: SQLite, sandbox gateway, memory mail, stub broker with
an in-process worker, and a virtual clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import func, insert, select

from config.settings import load_settings
from dunning.bootstrap import Container, bootstrap
from dunning.broker_names import QUEUES
from dunning.clock import VirtualClock
from dunning.gateways.ledger import MemoryLedger
from dunning.gateways.sandbox import SandboxGateway
from dunning.mail.transport import MemoryTransport
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from dunning.store.tables import customers, payment_methods, subscriptions
from workers.broker import make_broker, setup

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@dataclass
class Pipeline:
    c: Container
    clock: VirtualClock
    gateway: SandboxGateway
    mail: MemoryTransport
    broker: StubBroker
    worker: dramatiq.Worker | None = None

    def drain(self) -> None:
        """Wait until every queue is empty and the worker idle: work that other work enqueued
        (a retry the resolver sends) is done too."""
        for _ in range(20):
            for queue in QUEUES:
                self.broker.join(queue)
            if self.worker is not None:
                self.worker.join()
            if all(self.broker.queues[q].qsize() == 0 for q in QUEUES):
                return

    def advance(self, delta: timedelta) -> datetime:
        self.clock.advance(delta)
        return self.clock.now()

    def count(self, table: Any, *where: Any) -> int:
        with self.c.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
            )

    def row(self, table: Any, key: str) -> Any:
        with self.c.engine.connect() as conn:
            return conn.execute(select(table).where(table.c.id == key)).mappings().one()

    def add_customer(
        self,
        cid: str = "cus_1",
        *,
        token: str = "sbx_ok_1",
        network: str = "visa",
        timezone: str = "UTC",
        amount: int = 12500,
        currency: str = "EUR",
        sub_status: str = "active",
        billing_emails: tuple[str, ...] = (),
        name: str = "Ana",
        locale: str = "en",
    ) -> None:
        now = self.clock.now()
        ts = {"created_at": now, "updated_at": now}
        with self.c.engine.begin() as conn:
            conn.execute(
                insert(customers).values(
                    id=cid,
                    email=f"{cid}@example.com",
                    name=name,
                    locale=locale,
                    timezone=timezone,
                    billing_emails=list(billing_emails),
                    last_payment_at=now - timedelta(days=30),
                    **ts,
                )
            )
            conn.execute(
                insert(payment_methods).values(
                    id=f"pm_{cid}",
                    customer_id=cid,
                    gateway="sandbox",
                    token=token,
                    network=network,
                    last4="4242",
                    exp_month=12,
                    exp_year=2030,
                    is_default=True,
                    **ts,
                )
            )
            conn.execute(
                insert(subscriptions).values(
                    id=f"sub_{cid}",
                    customer_id=cid,
                    plan="pro-monthly",
                    amount=amount,
                    currency=currency,
                    payment_method_id=f"pm_{cid}",
                    status=sub_status,
                    current_period_end=now,
                    **ts,
                )
            )


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'p.sqlite3'}", outbox_dir=tmp_path / "outbox"
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    clock = VirtualClock(START)
    gateway = SandboxGateway(MemoryLedger(), clock=clock.now)
    mail = MemoryTransport()
    c = bootstrap(settings, clock=clock, engine=engine, gateway=gateway, transport=mail)
    broker = make_broker("stub://")
    assert isinstance(broker, StubBroker)
    setup(c, broker)
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        yield Pipeline(c, clock, gateway, mail, broker, worker)
    finally:
        worker.stop()
        broker.close()
        engine.dispose()
