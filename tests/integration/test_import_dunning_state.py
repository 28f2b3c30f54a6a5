"""An imported book with invoices already in dunning, on PostgreSQL, then the pipeline: the
production producers and actors, run in this process on a virtual clock.

Each case continues where it stands: the imported decline, attempt count and first failure,
the customer's local morning and the network limits decide the next charge, or that there is
none; a customer not yet told gets one email.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from config.settings import load_settings
from dunning.bootstrap import Container, bootstrap
from dunning.clock import VirtualClock
from dunning.gateways.ledger import LedgerEntry, SqlLedger
from dunning.gateways.sandbox import SandboxGateway
from dunning.imports import ImportReport, import_file
from dunning.mail.transport import MemoryTransport
from dunning.services.cards import replace_card
from dunning.simulate.inline import InlineDispatcher
from dunning.store.tables import invoices, notifications, payment_methods, subscriptions
from schedules.producers import PRODUCERS
from workers import context

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # a Tuesday; 10:00 in New York, 15:00 in Copenhagen
PIPELINE = ("due_retries", "due_steps", "due_emails")


@dataclass
class Book:
    c: Container
    clock: VirtualClock
    dispatcher: InlineDispatcher
    gateway: SandboxGateway
    mail: MemoryTransport
    tmp: Path

    def load(self, *lines: dict[str, Any]) -> ImportReport:
        path = self.tmp / "book.jsonl"
        path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
        return import_file(self.c.engine, path, now=self.clock.now(), pipeline=self.c)

    def run(self) -> None:
        """What the scheduler and the workers do now: due retries, steps, emails."""
        context.set_container(self.c)
        for name in PIPELINE:
            PRODUCERS[name][0](self.c, self.clock.now())
            self.dispatcher.drain()

    def charges(self, invoice_id: str) -> list[LedgerEntry]:
        """What reached the gateway for the invoice."""
        return [
            e for e in self.gateway.ledger.entries() if f"inv_{invoice_id}_" in e.idempotency_key
        ]

    def invoice(self, invoice_id: str) -> Any:
        return self._row(invoices, invoice_id)

    def card(self, card_id: str) -> Any:
        return self._row(payment_methods, card_id)

    def subscription(self, sub_id: str) -> Any:
        return self._row(subscriptions, sub_id)

    def _row(self, table: Any, key: str) -> Any:
        with self.c.engine.connect() as conn:
            return conn.execute(select(table).where(table.c.id == key)).mappings().one()

    def emails(self, invoice_id: str) -> list[tuple[str, str]]:
        """``(kind, status)`` of the invoice's emails in the outbox, oldest first."""
        with self.c.engine.connect() as conn:
            rows = conn.execute(
                select(notifications.c.kind, notifications.c.status)
                .where(notifications.c.invoice_id == invoice_id)
                .order_by(notifications.c.id)
            )
            return [(kind, status) for kind, status in rows]


@pytest.fixture
def book(pg_engine: Engine, tmp_path: Path) -> Iterator[Book]:
    clock = VirtualClock(NOW)
    gateway = SandboxGateway(SqlLedger(pg_engine), clock=clock.now)
    mail = MemoryTransport()
    dispatcher = InlineDispatcher()
    settings = load_settings(database_url=pg_engine.url.render_as_string(hide_password=False))
    c = bootstrap(settings, engine=pg_engine, clock=clock, gateway=gateway, transport=mail,
                  dispatcher=dispatcher)  # fmt: skip
    try:
        yield Book(c, clock, dispatcher, gateway, mail, tmp_path)
    finally:
        c.close()


def line(
    key: str,
    *,
    decline: dict[str, str] | None,
    attempts: int = 1,
    failed_ago: timedelta = timedelta(hours=2),
    last_ago: timedelta | None = None,
    network: str = "visa",
    timezone: str = "Europe/Copenhagen",
    notified: bool = False,
) -> dict[str, Any]:
    """A customer whose card (a sandbox token that would be approved) has an invoice in dunning."""
    invoice: dict[str, Any] = {
        "id": f"in_{key}", "subscription": f"sub_{key}", "amount": 2900, "currency": "EUR",
        "first_failed_at": (NOW - failed_ago).isoformat(), "attempts": attempts,
    }  # fmt: skip
    if notified:
        invoice["notified"] = True
    if decline is not None:
        invoice["decline"] = decline
    if last_ago is not None:
        invoice["last_attempt_at"] = (NOW - last_ago).isoformat()
    return {
        "id": f"cus_{key}", "email": f"{key}@example.com", "timezone": timezone,
        "payment_methods": [
            {"id": f"pm_{key}", "gateway": "sandbox", "token": f"sbx_ok_{key}",
             "network": network, "last4": "4242", "exp_month": 12, "exp_year": 2030,
             "default": True}],
        "subscriptions": [
            {"id": f"sub_{key}", "plan": "pro", "amount": 2900, "currency": "EUR",
             "status": "past_due"}],
        "invoices": [invoice],
    }  # fmt: skip


def local_morning(at: datetime, zone: str) -> datetime:
    """The first 09:00 in ``zone`` at or after ``at`` (the policy's retry time), in UTC."""
    tz = ZoneInfo(zone)
    local = at.astimezone(tz)
    morning = datetime.combine(local.date(), time(9, 0), tzinfo=tz)
    if morning < local:
        morning = datetime.combine(local.date() + timedelta(days=1), time(9, 0), tzinfo=tz)
    return morning.astimezone(UTC)


@pytest.mark.parametrize(
    "decline",
    [
        {"decline_code": "stolen_card"},
        {"decline_code": "do_not_honor", "network_code": "04"},  # Visa category 1
        {"decline_code": "generic_decline", "advice_code": "do_not_try_again"},
    ],
    ids=["stolen_card", "visa_category_1", "do_not_try_again"],
)
def test_a_card_the_decline_rules_out_is_never_charged_again(
    book: Book, decline: dict[str, str]
) -> None:
    assert book.load(line("ana", decline=decline, attempts=2)).inserted == 1

    for _ in range(4):  # the next days too
        book.run()
        book.clock.advance(timedelta(days=1))

    assert book.charges("in_ana") == []
    inv = book.invoice("in_ana")
    assert (inv["status"], inv["next_attempt_at"], inv["stop_reason"]) == (
        "open",
        None,
        "hard_decline",
    )
    assert book.card("pm_ana")["blocked_reason"] == "hard_decline"
    assert book.emails("in_ana")[:1] == [("action_required", "sent")]
    assert [kind for kind, _ in book.emails("in_ana")].count("action_required") == 1


def test_an_expired_card_waits_for_a_new_one_then_the_new_one_pays(book: Book) -> None:
    book.load(line("bo", decline={"decline_code": "expired_card", "network_code": "54"}))

    book.run()
    book.clock.advance(timedelta(days=2))
    book.run()

    assert book.charges("in_bo") == []
    inv = book.invoice("in_bo")
    assert (inv["next_attempt_at"], inv["stop_reason"]) == (None, "needs_new_card")
    assert book.emails("in_bo") == [("action_required", "sent")]

    new = book.gateway.tokenize("5555555555554444", 12, 2031)
    result = replace_card(book.c, "cus_bo", new, remove_old=True, now=book.clock.now())

    assert result.charged == {"in_bo": "succeeded"}
    assert [e.status for e in book.charges("in_bo")] == ["succeeded"]
    assert book.invoice("in_bo")["status"] == "paid"


def test_a_window_already_over_stops_with_window_over_and_no_charge(book: Book) -> None:
    decline = {"decline_code": "insufficient_funds", "network_code": "51"}
    book.load(line("cy", decline=decline, attempts=3, failed_ago=timedelta(days=20)))

    inv = book.invoice("in_cy")
    assert (inv["next_attempt_at"], inv["stop_reason"]) == (None, "window_over")
    book.run()

    assert book.charges("in_cy") == []
    assert book.subscription("sub_cy")["status"] == "suspended"
    # No "payment failed" promising retries: the suspension's email only.
    assert book.emails("in_cy") == [("subscription_suspended", "sent")]


def test_an_imported_schedule_already_used_up_stops_without_a_charge(book: Book) -> None:
    decline = {"decline_code": "insufficient_funds", "network_code": "51"}
    book.load(line("di", decline=decline, attempts=5, failed_ago=timedelta(days=8)))

    book.run()

    assert book.charges("in_di") == []
    assert book.invoice("in_di")["stop_reason"] == "schedule_exhausted"
    assert book.emails("in_di") == [("payment_failed", "sent")]


def test_the_next_retry_counts_the_imported_attempts_at_the_customers_local_morning(
    book: Book,
) -> None:
    # Failed at 09:00 in New York four days ago, retried on day 1 and day 2: retries 1 and 2
    # of the 1-3-5-7 schedule are used; the next is day 5's morning (the clocks moved on 8 March).
    zone = "America/New_York"
    decline = {"decline_code": "insufficient_funds", "network_code": "51"}
    book.load(line("ed", decline=decline, attempts=3, failed_ago=timedelta(days=4),
                   last_ago=timedelta(days=2), timezone=zone))  # fmt: skip
    first_failed = NOW - timedelta(days=4)
    day_5 = local_morning(first_failed + timedelta(days=5) - timedelta(hours=1), zone)

    book.run()

    assert book.charges("in_ed") == []
    inv = book.invoice("in_ed")
    assert inv["next_attempt_at"] == day_5 == datetime(2026, 3, 11, 13, 0, tzinfo=UTC)
    assert inv["next_attempt_at"].astimezone(ZoneInfo(zone)).time() == time(9, 0)
    assert book.emails("in_ed") == [("payment_failed", "sent")]

    book.clock.set(day_5)
    book.run()

    assert [(e.idempotency_key, e.status) for e in book.charges("in_ed")] == [
        ("inv_in_ed_att_4", "succeeded")
    ]
    assert book.invoice("in_ed")["status"] == "paid"


def test_a_mastercard_advice_to_wait_holds_the_next_retry(book: Book) -> None:
    # MAC 26: wait 48 hours after the decline. Without it day 1's retry would be tomorrow.
    decline = {"decline_code": "do_not_honor", "network_advice_code": "26"}
    book.load(line("fi", decline=decline, attempts=1, failed_ago=timedelta(hours=1),
                   network="mastercard"))  # fmt: skip

    book.run()
    book.clock.advance(timedelta(days=1, hours=12))
    book.run()

    assert book.charges("in_fi") == []
    after_wait = local_morning(NOW - timedelta(hours=1) + timedelta(hours=48), "Europe/Copenhagen")
    inv = book.invoice("in_fi")
    assert (inv["next_attempt_at"], inv["next_attempt_reason"]) == (after_wait, "mac_delay")


def test_an_imported_invoice_gets_its_first_email_once_unless_the_customer_was_told(
    book: Book,
) -> None:
    decline = {"decline_code": "insufficient_funds", "network_code": "51"}
    lines = (
        line("gus", decline=decline, attempts=2, failed_ago=timedelta(days=2)),
        line("hal", decline=decline, attempts=2, failed_ago=timedelta(days=2), notified=True),
    )
    book.load(*lines)

    book.run()
    book.clock.advance(timedelta(hours=1))
    assert book.load(*lines).unchanged == 2  # importing again sends nothing more
    book.run()

    assert book.emails("in_gus") == [("payment_failed", "sent")]
    assert book.emails("in_hal") == []
    sent = [m["To"] for m in book.mail.sent]
    assert sent == ["gus@example.com"]


def test_the_imported_attempts_count_towards_mastercards_daily_limit(book: Book) -> None:
    # Four invoices on one Mastercard card, each after four failed charges, the last three two
    # hours ago: 12 attempts in 24 hours, over Mastercard's 10. Day 7's retry (tomorrow 09:00
    # in Copenhagen) would be inside that day: the retries wait for the next morning after it.
    decline = {"decline_code": "insufficient_funds"}
    customer = line("gil", decline=decline, attempts=4, failed_ago=timedelta(days=6),
                    last_ago=timedelta(hours=2), network="mastercard")  # fmt: skip
    invoice = customer["invoices"][0]
    customer["subscriptions"] = [
        dict(customer["subscriptions"][0], id=f"sub_gil_{n}") for n in range(4)
    ]
    customer["invoices"] = [
        dict(invoice, id=f"in_gil_{n}", subscription=f"sub_gil_{n}") for n in range(4)
    ]
    book.load(customer)
    day_7 = datetime(2026, 3, 11, 8, 0, tzinfo=UTC)  # 09:00 in Copenhagen
    limit_over = NOW - timedelta(hours=2) + timedelta(hours=24)
    assert day_7 < limit_over

    book.run()
    book.clock.set(day_7)
    book.run()

    for n in range(4):
        assert book.charges(f"in_gil_{n}") == []
        inv = book.invoice(f"in_gil_{n}")
        assert inv["next_attempt_at"] == local_morning(limit_over, "Europe/Copenhagen")
        assert inv["next_attempt_reason"] == "network_limit"
