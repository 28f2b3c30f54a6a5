"""The invariant checker every fault test ends with, and the cheap "settled yet?" probe it
waits on.

After a fault: every case reached its final state; the gateway's ledger and the attempts agree
(no charge the database does not know about, at most one successful charge per invoice, one
ledger entry per idempotency key); nothing is left pending or unknown; every sent email
arrived at the SMTP server under its stable Message-ID, and copies with an equal Message-ID
are counted (the one duplicate SMTP allows) rather than hidden.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping, and_, func, or_, select

from dunning.gateways.ledger import LedgerEntry
from dunning.mail.message import message_id_for
from dunning.ops.brokers import reading
from dunning.store.tables import invoices, notifications, payment_attempts
from tests.integration.conftest import MAIL_FROM, Pipeline
from tests.reliability.book import Cases
from workers.broker import QUEUES

UNRESOLVED = ("pending", "unknown")
FINAL = or_(
    invoices.c.status == "paid",
    and_(
        invoices.c.status == "open",
        invoices.c.stop_reason.is_not(None),
        invoices.c.next_attempt_at.is_(None),
    ),
)


def received(p: Pipeline) -> Counter[str]:
    """Copies per Message-ID of every message the SMTP server accepted."""
    return Counter(str(m["Message-ID"]) for m in p.mail.messages())


def progress(p: Pipeline) -> dict[str, int]:
    """Counts for waiting and for the log: final invoices, unresolved attempts, unsent mail."""
    with p.engine.connect() as conn:

        def count(table: Any, *where: Any) -> int:
            return int(
                conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
            )

        return {
            "invoices": count(invoices),
            "final": count(invoices, FINAL),
            "paid": count(invoices, invoices.c.status == "paid"),
            "unresolved_attempts": count(
                payment_attempts, payment_attempts.c.status.in_(UNRESOLVED)
            ),
            "unsent_emails": count(notifications, notifications.c.status == "pending"),
            "sent_emails": count(notifications, notifications.c.status == "sent"),
        }


def settled(p: Pipeline, cases: Cases) -> bool:
    """Every case final, no attempt unresolved, no email unsent, every sent one received."""
    now = progress(p)
    return (
        now["final"] == now["invoices"] == len(cases)
        and now["unresolved_attempts"] == 0
        and now["unsent_emails"] == 0
        and len(received(p)) >= now["sent_emails"]
    )


def invoice_of(key: str) -> str:
    """``inv_<invoice>_att_<n>`` -> ``<invoice>``."""
    return key[len("inv_") : key.rindex("_att_")]


@dataclass
class Books:
    invoices: dict[str, RowMapping]
    attempts: dict[str, list[RowMapping]]
    ledger: list[LedgerEntry]
    outbox: list[RowMapping]

    @classmethod
    def read(cls, p: Pipeline) -> Books:
        with p.engine.connect() as conn:
            invs = {r["id"]: r for r in conn.execute(select(invoices)).mappings()}
            attempts: dict[str, list[RowMapping]] = defaultdict(list)
            for row in conn.execute(
                select(payment_attempts).order_by(payment_attempts.c.attempt_no)
            ).mappings():
                attempts[row["invoice_id"]].append(row)
            outbox = list(conn.execute(select(notifications)).mappings())
        return cls(invs, dict(attempts), p.ledger(), outbox)


def _check_charges(books: Books, cases: Cases, *, stopped_may_pay: bool) -> dict[str, Any]:
    ledger = {e.idempotency_key: e for e in books.ledger}
    assert len(ledger) == len(books.ledger), "two ledger entries share an idempotency key"
    by_key = {a["idempotency_key"]: a for rows in books.attempts.values() for a in rows}
    assert len(by_key) == sum(map(len, books.attempts.values())), "an attempt key repeats"
    unknown_to_us = sorted(set(ledger) - set(by_key))
    assert not unknown_to_us, f"charges the database does not know about: {unknown_to_us[:5]}"
    succeeded = Counter(invoice_of(k) for k, e in ledger.items() if e.status == "succeeded")
    twice = {i: n for i, n in succeeded.items() if n > 1}
    assert not twice, f"invoices charged successfully more than once: {twice}"
    for invoice_id, rows in books.attempts.items():
        assert [r["attempt_no"] for r in rows] == list(range(1, len(rows) + 1)), invoice_id
        for r in rows[1:]:  # attempt 1 is the renewal the gateway reported, not ours
            entry = ledger.get(r["idempotency_key"])
            expected = {"succeeded": "succeeded", "declined": "declined", "not_charged": None}
            assert r["status"] in expected, (invoice_id, r["attempt_no"], r["status"])
            got = entry.status if entry else None
            assert got == expected[r["status"]], (invoice_id, r["attempt_no"], r["status"], got)
    for invoice_id in cases.paid:
        inv = books.invoices[invoice_id]
        assert inv["status"] == "paid", (invoice_id, inv["status"], inv["stop_reason"])
        assert succeeded[invoice_id] == 1, invoice_id
    for invoice_id in cases.stopped:
        inv = books.invoices[invoice_id]
        if stopped_may_pay and inv["status"] == "paid":
            assert succeeded[invoice_id] == 1, invoice_id
            continue
        assert (inv["status"], inv["next_attempt_at"]) == ("open", None), invoice_id
        assert inv["stop_reason"], f"{invoice_id}: retries ended without a reason"
        assert succeeded[invoice_id] == 0, invoice_id
    statuses = Counter(a["status"] for rows in books.attempts.values() for a in rows)
    assert not set(statuses) & set(UNRESOLVED), f"attempts left unresolved: {statuses}"
    return {
        "attempts": dict(sorted(statuses.items())),
        "retries_after_unknown": sum(
            1
            for rows in books.attempts.values()
            for a in rows
            if a["reason"] == "retry_after_unknown"
        ),
        "ledger_entries": len(ledger),
        "ledger_succeeded": sum(succeeded.values()),
        "paid": sum(1 for i in books.invoices.values() if i["status"] == "paid"),
        "stopped": sum(1 for i in books.invoices.values() if i["status"] == "open"),
    }


def _check_emails(
    books: Books, copies: Counter[str], cases: Cases, *, allow_duplicates: bool
) -> dict[str, Any]:
    statuses = Counter(r["status"] for r in books.outbox)
    assert set(statuses) <= {"sent", "cancelled"}, f"emails not sent: {statuses}"
    for row in books.outbox:
        assert row["message_id"] == message_id_for(row["dedup_key"], MAIL_FROM), row["dedup_key"]
    rows = {r["message_id"]: r for r in books.outbox}
    assert len(rows) == len(books.outbox), "two dedup keys share a Message-ID"
    sent = {r["dedup_key"]: r for r in books.outbox if r["status"] == "sent"}
    missing = sorted({r["message_id"] for r in sent.values()} - set(copies))
    assert not missing, f"{len(missing)} emails marked sent never arrived, e.g. {missing[:3]}"
    unknown = sorted(set(copies) - set(rows))
    assert not unknown, f"{len(unknown)} messages arrived that the outbox never held"
    # Delivered, but the "sent" mark was lost in the crash window and the invoice was paid
    # before the retry: the row ends cancelled. Still one delivery, under its Message-ID.
    unrecorded = sorted(rows[m]["dedup_key"] for m in copies if rows[m]["status"] != "sent")
    duplicates = {rows[m]["dedup_key"]: n - 1 for m, n in copies.items() if n > 1}
    if not allow_duplicates:
        assert not duplicates, f"emails delivered twice with no crash window: {duplicates}"
        assert not unrecorded, f"emails delivered but not recorded as sent: {unrecorded[:5]}"
    for invoice_id in cases.paid:
        assert f"payment_recovered:{invoice_id}" in sent, invoice_id
    for invoice_id in cases.stopped:
        recovered = f"payment_recovered:{invoice_id}" in sent
        assert recovered or f"action_required:{invoice_id}" in sent, invoice_id
    return {
        "outbox": dict(sorted(statuses.items())),
        "sent_by_kind": dict(sorted(Counter(r["kind"] for r in sent.values()).items())),
        "smtp_messages": sum(copies.values()),
        "smtp_duplicates": sum(duplicates.values()),
        "duplicate_keys": sorted(duplicates)[:20],
        "delivered_then_cancelled": len(unrecorded),
        "send_attempts": sum(int(r["send_attempts"]) for r in books.outbox),
    }


def dead_letters(p: Pipeline) -> int:
    """Messages dramatiq gave up on (the producers re-derive their work from the database),
    as ``dunning queues`` counts them on the pipeline's broker."""
    with reading(p.container.settings) as view:
        assert view is not None, "the pipeline runs on a real broker"
        return sum(s.dead for s in view.queues(QUEUES, now_ms=int(time.time() * 1000)))


def check(
    p: Pipeline, cases: Cases, *, allow_duplicates: bool, stopped_may_pay: bool = False
) -> dict[str, Any]:
    """Assert every invariant after a run; return the run's figures."""
    books = Books.read(p)
    assert sorted(books.invoices) == sorted(cases.all), "an invoice appeared or went missing"
    figures: dict[str, Any] = {"cases": len(cases)}
    figures |= _check_charges(books, cases, stopped_may_pay=stopped_may_pay)
    figures |= _check_emails(books, received(p), cases, allow_duplicates=allow_duplicates)
    return figures
