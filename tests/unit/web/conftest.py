"""The web app over its in-memory twins: SQLite, sandbox gateway, memory mail, stub broker.

Messages stay on the stub broker until a test calls :meth:`Web.drain`, which runs an in-process
worker until every queue is empty; so a test can look at what was enqueued first.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import func, insert, select
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 under its TestClient; httpx (a runtime dependency) still
    # works, and this is the only place the warning is expected.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from config.settings import Settings, load_settings
from dunning.bootstrap import Container, bootstrap
from dunning.broker_names import QUEUES
from dunning.clock import VirtualClock
from dunning.gateways.base import Decline
from dunning.gateways.ledger import MemoryLedger
from dunning.gateways.sandbox import SandboxGateway
from dunning.links import LinkPurpose, make_link_token
from dunning.mail.transport import MemoryTransport
from dunning.services.failures import FailedCharge, record_failure
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from dunning.store.tables import customers, metadata, payment_methods, subscriptions
from dunning.web.app import create_app
from dunning.webhooks.signatures import sign_quickpay, sign_stripe
from workers.broker import make_broker, setup

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday morning: outside quiet hours
STRIPE_SECRET = "whsec_test_secret"
QP_KEY = "qp_private_key_test"
LINK_SECRET = "link-secret-for-tests"


def web_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'web.sqlite3'}",
        "outbox_dir": tmp_path / "outbox",
        "link_secret": LINK_SECRET,
        "stripe": {"webhook_secrets": ["whsec_old_secret", STRIPE_SECRET]},
        "quickpay": {"private_key": QP_KEY},
        "brand": {"name": "Acme Mail", "support_email": "help@acme.example"},
    }
    values.update(overrides)
    return load_settings(**values)


@dataclass
class Web:
    c: Container
    clock: VirtualClock
    gateway: SandboxGateway
    mail: MemoryTransport
    broker: StubBroker
    client: TestClient

    # -- time and queues ----------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.clock.now()

    def queued(self, queue: str = "events") -> int:
        return int(self.broker.queues[queue].qsize())

    def drain(self) -> None:
        """Run a worker until every queue is empty, including work that work enqueued."""
        worker = dramatiq.Worker(self.broker, worker_threads=1, worker_timeout=50)
        worker.start()
        try:
            for _ in range(20):
                for queue in QUEUES:
                    self.broker.join(queue, fail_fast=True)
                worker.join()
                if all(self.broker.queues[q].qsize() == 0 for q in QUEUES):
                    return
        finally:
            worker.stop()

    # -- database -----------------------------------------------------------------------------
    def count(self, table: Any, *where: Any) -> int:
        with self.c.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
            )

    def row(self, table: Any, key: str) -> Any:
        with self.c.engine.connect() as conn:
            return conn.execute(select(table).where(table.c.id == key)).mappings().one()

    def rows(self, table: Any, *where: Any) -> list[Any]:
        with self.c.engine.connect() as conn:
            return list(conn.execute(select(table).where(*where)).mappings())

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, to show that a request changed nothing."""
        with self.c.engine.connect() as conn:
            return {
                t.name: sorted(map(tuple, conn.execute(select(t))), key=repr)
                for t in metadata.sorted_tables
            }

    def add_customer(
        self,
        cid: str = "cus_1",
        *,
        name: str = "Ana Berg",
        locale: str = "en",
        token: str = "sbx_ok_old",
        sub_status: str = "active",
        amount: int = 12500,
        currency: str = "EUR",
        period_end: datetime | None = None,
    ) -> None:
        now = self.now
        ts = {"created_at": now, "updated_at": now}
        with self.c.engine.begin() as conn:
            conn.execute(
                insert(customers).values(
                    id=cid, email=f"{cid}@example.com", name=name, locale=locale,
                    timezone="Europe/Copenhagen", billing_emails=[], **ts,
                )
            )  # fmt: skip
            conn.execute(
                insert(payment_methods).values(
                    id=f"pm_{cid}", customer_id=cid, gateway="sandbox", token=token,
                    network="visa", last4="0341", exp_month=4, exp_year=2026, is_default=True,
                    **ts,
                )
            )  # fmt: skip
            conn.execute(
                insert(subscriptions).values(
                    id=f"sub_{cid}", customer_id=cid, plan="Pro monthly", amount=amount,
                    currency=currency, payment_method_id=f"pm_{cid}", status=sub_status,
                    current_period_end=period_end or now + timedelta(days=20), **ts,
                )
            )  # fmt: skip

    def fail_invoice(self, cid: str = "cus_1", invoice: str = "in_1", amount: int = 12500) -> None:
        """Open an invoice as a failed renewal reported by the gateway would."""
        record_failure(
            self.c,
            FailedCharge(
                invoice_id=invoice,
                subscription_id=f"sub_{cid}",
                amount=amount,
                currency="EUR",
                # a real decline: with none, the failure reads as an unknown outcome in flight
                decline=Decline(decline_code="insufficient_funds", network_code="51"),
                occurred_at=self.now,
            ),
            self.now,
        )

    # -- links and requests -------------------------------------------------------------------
    def link(
        self,
        cid: str = "cus_1",
        *,
        generation: int = 0,
        ttl: timedelta = timedelta(days=10),
        purpose: LinkPurpose = LinkPurpose.update_card,
    ) -> str:
        token = make_link_token(
            LINK_SECRET,
            customer_id=cid,
            purpose=purpose,
            generation=generation,
            expires_at=self.now + ttl,
        )
        return f"/update/{token}"

    def open_form(self, path: str) -> str:
        """GET the page (which sets the CSRF cookie) and return the hidden field's value."""
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        marker = 'name="csrf" value="'
        start = response.text.index(marker) + len(marker)
        return response.text[start : response.text.index('"', start)]

    def submit_card(
        self,
        path: str,
        number: str = "4242 4242 4242 4242",
        *,
        remove_old: bool = True,
        csrf: str | None = None,
        **fields: str,
    ) -> Any:
        value = csrf if csrf is not None else self.open_form(path)
        data = {"csrf": value, "card_number": number, "exp_month": "12", "exp_year": "2030"}
        data["cvc"] = "123"
        data.update(fields)
        if remove_old:
            data["remove_old"] = "1"
        return self.client.post(path, data=data, follow_redirects=False)

    def post_stripe(
        self, payload: Any, *, t: int | None = None, secret: str = STRIPE_SECRET
    ) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        stamp = int(self.now.timestamp()) if t is None else t
        header = sign_stripe(body, secret, stamp)
        return self.client.post(
            "/webhooks/stripe", content=body, headers={"Stripe-Signature": header}
        )

    def post_quickpay(self, payload: Any, *, key: str = QP_KEY) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.client.post(
            "/webhooks/quickpay",
            content=body,
            headers={"QuickPay-Checksum-Sha256": sign_quickpay(body, key)},
        )


def make_web(
    settings: Settings, *, start: datetime = START, gateway: Any = None, **overrides: Any
) -> Iterator[Web]:
    engine = make_engine(settings.database_url)
    upgrade(engine)
    clock = VirtualClock(start)
    sandbox = SandboxGateway(MemoryLedger(), clock=clock.now)
    mail = MemoryTransport()
    c = bootstrap(settings, clock=clock, engine=engine, gateway=gateway or sandbox, transport=mail)
    broker = make_broker("stub://")
    assert isinstance(broker, StubBroker)
    setup(c, broker)
    broker.emit_after("process_boot")
    app = create_app(c, **overrides)
    try:
        with TestClient(app, base_url="http://testserver") as client:
            yield Web(c, clock, sandbox, mail, broker, client)
    finally:
        broker.close()
        engine.dispose()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    yield from make_web(web_settings(tmp_path))


@pytest.fixture
def named(tmp_path: Path) -> Iterator[Web]:
    """The card page of a brand that names its plans (``Pro monthly`` is ``Acme Pro``)."""
    brand = {
        "name": "Acme Mail",
        "support_email": "help@acme.example",
        "plan_names": {"Pro monthly": "Acme Pro"},
    }
    yield from make_web(web_settings(tmp_path, brand=brand))
