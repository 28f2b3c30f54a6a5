"""A small book on SQLite (or PostgreSQL) for the operator tests, plus a local HTTP receiver."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 under its TestClient; httpx still works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient  # noqa: F401  (re-exported for the tests)

from config.settings import load_settings
from dunning.bootstrap import Container, bootstrap
from dunning.clock import VirtualClock
from dunning.gateways.base import Decline
from dunning.gateways.ledger import MemoryLedger
from dunning.gateways.sandbox import SandboxGateway
from dunning.mail.transport import MemoryTransport
from dunning.ports import NullDispatcher
from dunning.services.failures import FailedCharge, record_failure
from dunning.store.engine import make_engine
from dunning.store.tables import customers, invoices, payment_methods, subscriptions

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday morning
OPS_PASSWORD = "ops-password-for-tests"


class RecordingDispatcher(NullDispatcher):
    """Keeps what the producers would have enqueued."""

    sends = True

    def __init__(self) -> None:
        self.sent: dict[str, list[Any]] = {}

    def _keep(self, name: str, items: Sequence[Any]) -> None:
        self.sent.setdefault(name, []).extend(items)

    def retry_charges(self, items: Sequence[tuple[str, int]]) -> None:
        self._keep("retry_charges", items)

    def deliver_outbound(self, ids: Sequence[int]) -> None:
        self._keep("deliver_outbound", ids)


@dataclass
class Book:
    c: Container
    clock: VirtualClock
    dispatcher: RecordingDispatcher
    url: str

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def add_customer(
        self,
        cid: str,
        *,
        amount: int = 1000,
        currency: str = "EUR",
        plan: str = "default",
        sub_status: str = "active",
    ) -> None:
        ts = {"created_at": self.now, "updated_at": self.now}
        with self.c.engine.begin() as conn:
            conn.execute(
                insert(customers).values(
                    id=cid, email=f"{cid}@example.com", name=f"Name {cid}", locale="en",
                    timezone="UTC", billing_emails=[], **ts,
                )
            )  # fmt: skip
            conn.execute(
                insert(payment_methods).values(
                    id=f"pm_{cid}", customer_id=cid, gateway="sandbox", token=f"sbx_ok_{cid}",
                    network="visa", last4="4242", exp_month=12, exp_year=2030, is_default=True,
                    **ts,
                )
            )  # fmt: skip
            conn.execute(
                insert(subscriptions).values(
                    id=f"sub_{cid}", customer_id=cid, plan=plan, amount=amount,
                    currency=currency, payment_method_id=f"pm_{cid}", status=sub_status, **ts,
                )
            )  # fmt: skip

    def fail(self, cid: str, invoice: str | None = None) -> str:
        """A failed renewal (soft decline), as a gateway webhook reports it: dunning starts."""
        invoice = invoice or f"in_{cid}"
        with self.c.engine.connect() as conn:
            sub = conn.execute(select(subscriptions).where(subscriptions.c.id == f"sub_{cid}"))
            row = sub.mappings().one()
        failure = FailedCharge(
            invoice_id=invoice,
            subscription_id=row["id"],
            amount=row["amount"],
            currency=row["currency"],
            decline=Decline(decline_code="insufficient_funds", network_code="51"),
            occurred_at=self.now,
        )
        assert record_failure(self.c, failure, self.now) == "recorded"
        return invoice

    def set(self, table: Any, key: str, **values: Any) -> None:
        with self.c.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == key).values(**values))

    def row(self, table: Any, key: Any) -> Any:
        with self.c.engine.connect() as conn:
            return conn.execute(select(table).where(table.c.id == key)).mappings().one()

    def rows(self, table: Any, *where: Any) -> list[Any]:
        with self.c.engine.connect() as conn:
            return list(conn.execute(select(table).where(*where)).mappings())

    def count(self, table: Any, *where: Any) -> int:
        with self.c.engine.connect() as conn:
            stmt = select(func.count()).select_from(table).where(*where)
            return int(conn.execute(stmt).scalar_one())

    def invoice_row(self, key: str) -> Any:
        return self.row(invoices, key)

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)


def make_book(url: str, tmp_path: Path) -> Iterator[Book]:
    settings = load_settings(
        database_url=url,
        outbox_dir=tmp_path / "outbox",
        ops={"username": "ops", "password": OPS_PASSWORD},
        # The merchant's receiver of these tests listens on loopback.
        endpoints={"allow_networks": ["127.0.0.0/8"]},
    )
    engine = make_engine(url)
    clock = VirtualClock(START)
    dispatcher = RecordingDispatcher()
    c = bootstrap(
        settings,
        clock=clock,
        dispatcher=dispatcher,
        engine=engine,
        gateway=SandboxGateway(MemoryLedger(), clock=clock.now),
        transport=MemoryTransport(),
    )
    try:
        yield Book(c, clock, dispatcher, url)
    finally:
        engine.dispose()


@pytest.fixture
def book(sqlite_url: str, tmp_path: Path) -> Iterator[Book]:
    """A migrated, empty SQLite book with a virtual clock."""
    yield from make_book(sqlite_url, tmp_path)


@pytest.fixture
def any_book(db_url: str, tmp_path: Path) -> Iterator[Book]:
    """The same on SQLite and on PostgreSQL."""
    yield from make_book(db_url, tmp_path)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A merchant's webhook endpoint on loopback: answers with the scripted status codes."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            rec = holder[0]
            with rec.lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                rec.received.append(Received(self.path, headers, body))
            self.send_response(rec.answer())
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None  # keep test output quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
