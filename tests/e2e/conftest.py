"""The whole service on real sockets: an SMTP server, uvicorn, a worker, and Chromium.

Chromium is the system one (``/usr/bin/chromium``); it is never downloaded. Without it the e2e
tests skip on a laptop and fail when ``CI=true``.
"""

from __future__ import annotations

import email
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from dramatiq.brokers.stub import StubBroker

from config.settings import Settings, load_settings
from dunning.bootstrap import Container, bootstrap
from dunning.clock import VirtualClock
from dunning.store.migrate import upgrade
from dunning.web.app import create_app
from tests.services import IN_CI, free_port
from workers.broker import make_broker, setup

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A weekday noon in UTC: outside every customer's quiet hours, so emails go out at once.
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STRIPE_SECRET = "whsec_e2e_secret"


def need_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"Chromium is not installed at {CHROMIUM}"
    if IN_CI:
        pytest.fail(message + " (CI=true: e2e tests must not skip)")
    pytest.skip(message)


@dataclass
class Mailbox:
    """What the SMTP server accepted; tests wait on it instead of sleeping."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK queued"

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[EmailMessage]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout_s):
                raise AssertionError(f"{len(self.messages)} emails arrived, expected {count}")
            return list(self.messages)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Service:
    c: Container
    base_url: str
    broker: StubBroker


def e2e_settings(tmp_path: Path, mailbox: Mailbox, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'e2e.sqlite3'}",
        "outbox_dir": tmp_path / "outbox",
        "public_base_url": f"http://127.0.0.1:{port}",
        "link_secret": "e2e-link-secret",
        "smtp": {"host": "127.0.0.1", "port": mailbox.port, "timeout_s": 10},
        "stripe": {"webhook_secrets": [STRIPE_SECRET]},
        "mail_from": "billing@acme.example",
    }
    return load_settings(**{**values, **overrides})


@contextmanager
def running(settings: Settings, port: int) -> Iterator[Service]:
    """Web, worker and SMTP transport wired as ``dunning run`` does, on real sockets."""
    c = bootstrap(settings, clock=VirtualClock(NOON))
    upgrade(c.engine)
    # Build the gateway now: the sandbox's SQL ledger creates a table when built, and the first
    # use is inside a write transaction, where SQLite would make that DDL wait on itself.
    assert c.gateway.name == settings.gateway
    broker = make_broker("stub://")
    assert isinstance(broker, StubBroker)
    setup(c, broker)
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    server = uvicorn.Server(
        uvicorn.Config(create_app(c), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # uvicorn offers no event to wait on
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Service(c, f"http://127.0.0.1:{port}", broker)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        worker.stop()
        broker.close()
        c.transport.close()
        c.close()


@pytest.fixture
def service(tmp_path: Path, mailbox: Mailbox) -> Iterator[Service]:
    """The service on the sandbox gateway."""
    port = free_port()
    with running(e2e_settings(tmp_path, mailbox, port), port) as svc:
        yield svc
