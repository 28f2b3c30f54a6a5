"""A book on PostgreSQL and a sandbox gateway that can hold a charge mid-call, for the money-
safety tests: a charge is started, held while another connection changes the invoice, then let
go, with real threads and real row locks in between."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from config.settings import load_settings
from dunning.bootstrap import Container, bootstrap
from dunning.gateways.base import ChargeRequest, ChargeResult, VerifyResult
from dunning.gateways.ledger import LedgerEntry, SqlLedger
from dunning.gateways.sandbox import SandboxGateway
from dunning.mail.transport import MemoryTransport
from dunning.policy.types import Decline
from dunning.services.failures import FailedCharge, record_failure
from dunning.store.tables import customers, invoices, payment_methods, sandbox_ledger, subscriptions

HOLD_S = 20.0


@dataclass
class Held:
    """One held call: ``started`` is set when it reached the gateway, ``go`` lets it on."""

    started: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)


class HoldingGateway(SandboxGateway):
    """The sandbox, except that a charge (or a verification) named in ``holds`` waits at the
    gateway's door until the test lets it go. What it then does is the sandbox's."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(SqlLedger(engine))
        self.holds: dict[str, Held] = {}

    def hold(self, what: str) -> Held:
        self.holds[what] = Held()
        return self.holds[what]

    def _wait(self, what: str) -> None:
        held = self.holds.get(what)
        if held is not None:
            held.started.set()
            assert held.go.wait(HOLD_S), f"{what} was held and never let go"

    def charge(self, request: ChargeRequest) -> ChargeResult:
        self._wait(request.idempotency_key)
        return super().charge(request)

    def verify(self, token: str, *, customer_id: str, currency: str) -> VerifyResult:
        self._wait("verify:" + customer_id)
        return super().verify(token, customer_id=customer_id, currency=currency)


@dataclass
class Book:
    c: Container
    gateway: HoldingGateway
    mail: MemoryTransport
    now: datetime

    def add_customer(self, cid: str, *, subs: int = 1, token: str = "sbx_ok_1") -> None:
        ts = {"created_at": self.now, "updated_at": self.now}
        with self.c.engine.begin() as conn:
            conn.execute(
                insert(customers).values(
                    id=cid, email=f"{cid}@example.com", name=cid, timezone="UTC", **ts
                )
            )
            conn.execute(
                insert(payment_methods).values(
                    id=f"pm_{cid}",
                    customer_id=cid,
                    gateway="sandbox",
                    token=token,
                    network="visa",
                    last4="4242",
                    exp_month=12,
                    exp_year=2030,
                    is_default=True,
                    **ts,
                )
            )
            for n in range(subs):
                conn.execute(
                    insert(subscriptions).values(
                        id=f"sub_{cid}_{n}",
                        customer_id=cid,
                        plan="pro",
                        amount=2900,
                        currency="EUR",
                        payment_method_id=f"pm_{cid}",
                        **ts,
                    )
                )

    def fail(self, cid: str, n: int = 0, *, at: datetime | None = None) -> str:
        """A failed renewal of subscription ``n``: an open invoice in dunning."""
        invoice_id = f"in_{cid}_{n}"
        failure = FailedCharge(
            invoice_id, f"sub_{cid}_{n}", 2900, "EUR", Decline("insufficient_funds", "51"),
            at or self.now,
        )  # fmt: skip
        assert record_failure(self.c, failure, self.now) == "recorded"
        return invoice_id

    def invoice(self, invoice_id: str) -> Any:
        with self.c.engine.connect() as conn:
            return (
                conn.execute(select(invoices).where(invoices.c.id == invoice_id)).mappings().one()
            )

    def ledger(self) -> list[LedgerEntry]:
        return self.gateway.ledger.entries()

    def successes(self, invoice_id: str) -> int:
        with self.c.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(sandbox_ledger)
                    .where(
                        sandbox_ledger.c.idempotency_key.like(f"inv_{invoice_id}_att_%"),
                        sandbox_ledger.c.status == "succeeded",
                    )
                ).scalar_one()
            )


@pytest.fixture
def book(pg_engine: Engine) -> Iterator[Book]:
    """A book on the module's PostgreSQL database; one minute after the first failures."""
    settings = load_settings(
        database_url=str(pg_engine.url.render_as_string(hide_password=False)),
        timing={"unknown_after_s": 3, "gateway_timeout_s": 1},
    )
    gateway = HoldingGateway(pg_engine)
    mail = MemoryTransport()
    c = bootstrap(settings, engine=pg_engine, gateway=gateway, transport=mail)
    try:
        yield Book(c, gateway, mail, datetime.now(UTC) - timedelta(minutes=1))
    finally:
        c.close()


def in_thread(fn: Any, *args: Any, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` in a thread; the dict gets its ``result`` or its ``error``."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the test, which re-raises it
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def finished(thread: threading.Thread, out: dict[str, Any]) -> Any:
    thread.join(HOLD_S)
    assert not thread.is_alive(), "the charging thread did not finish"
    if "error" in out:
        raise out["error"]
    return out.get("result")
