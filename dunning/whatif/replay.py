"""One replay: some invoices of the book under one policy, through the real pipeline on a copy.

The copy is a SQLite database in memory, loaded with the invoices' customers as they were
before the failure; each failure happens at its real time; the clock runs hour by hour; the
sandbox gateway's answers to the retries come from the outcome model. When the clock stops,
what happened to each invoice is read back from the copy's own tables. A replay runs in a
worker process of its own (:mod:`dunning.whatif.compare`), so it takes only plain data.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from dunning.mail.transport import Sendable, SendResult
from dunning.policy.config import PolicyBook
from dunning.policy_file import load_policy_book
from dunning.simulate.book import sandbox_token
from dunning.simulate.runner import Wiring, advance, simulation
from dunning.store.tables import audit_log, invoices, notifications, payment_attempts
from dunning.whatif.book import Book, Case, cards_of, scenario
from dunning.whatif.oracle import ModelOracle
from dunning.whatif.params import ModelParams
from dunning.whatif.pool import quiet_pipeline

# Items per actor message in a replay: a producer's whole scan in a few messages.
BATCH = 500


@dataclass(frozen=True)
class PolicySpec:
    """A policy to compare: the policy file with these overrides (``{}``: the file itself)."""

    name: str
    base: Path
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def book(self) -> PolicyBook:
        return load_policy_book(self.base, overrides=self.overrides)


@dataclass(frozen=True)
class Task:
    index: int
    policy: PolicySpec
    book: Book  # the customers of ``cases`` only
    cases: list[Case]
    start: datetime
    days: int
    params: ModelParams
    seed: int
    slot: int = 0  # which of the compared policies


@dataclass(frozen=True, slots=True)
class InvoiceOutcome:
    invoice_id: str
    recovered: bool
    days_to_recovery: float | None
    retries: int  # merchant charges after the failed one that reached the gateway
    emails: Mapping[str, int]  # emails about this invoice the pipeline sent, by kind
    suspended: bool  # its subscription was suspended at the end of the window
    stop_reason: str | None


@dataclass
class TaskResult:
    index: int
    outcomes: list[InvoiceOutcome]
    # network -> most attempts on one card in any 30 days, and in any 24 hours
    peaks: dict[str, tuple[int, int]]


def _oracle(task: Task) -> ModelOracle:
    oracle = ModelOracle(task.params, seed=task.seed)
    for card, customer in cards_of(task.book, task.cases):
        oracle.add_card(sandbox_token(card.id), timezone=customer.timezone)
    networks = {card.id: card.network for card, _ in cards_of(task.book, task.cases)}
    for case in task.cases:
        oracle.add_failure(
            case.invoice_id,
            token=sandbox_token(case.card_id),
            decline=case.decline,
            network=networks.get(case.card_id, "unknown"),
            failed_at=case.failed_at,
        )
    return oracle


def run_task(task: Task, progress: Callable[[int, int], None] | None = None) -> TaskResult:
    """Replay the task's invoices under its policy; what happened to each."""
    sc = scenario(task.book, task.cases, start=task.start, days=task.days)
    wiring = Wiring(
        database_url="sqlite://",
        policy=task.policy.book(),
        oracle=_oracle(task),
        transport=NullTransport(),
        batch=BATCH,
    )
    with quiet_pipeline(), simulation(sc, wiring) as sim:
        advance(sim, sc, progress=progress)
        return collect(sim.container.engine, task)


def _peak(times: list[datetime], window: timedelta) -> int:
    """Most of ``times`` (sorted) inside any window of that length."""
    return max((i + 1 - bisect_left(times, t - window + timedelta(microseconds=1), 0, i)
                for i, t in enumerate(times)), default=0)  # fmt: skip


def _peaks(attempts: list[Any]) -> dict[str, tuple[int, int]]:
    by_card: dict[str, list[datetime]] = {}
    network: dict[str, str] = {}
    for a in attempts:
        by_card.setdefault(a["payment_method_id"], []).append(a["created_at"])
        network[a["payment_method_id"]] = a["network"]
    out: dict[str, tuple[int, int]] = {}
    for card, times in by_card.items():
        times.sort()
        month, day = _peak(times, timedelta(days=30)), _peak(times, timedelta(hours=24))
        old = out.get(network[card], (0, 0))
        out[network[card]] = (max(old[0], month), max(old[1], day))
    return out


class NullTransport:
    """Takes every email and keeps none: a replay's emails are counted in its outbox (each
    rendered and marked sent by the real outbox), never delivered or written."""

    def send(self, message: Sendable) -> SendResult:
        return SendResult()

    def close(self) -> None:
        return None


def collect(engine: Engine, task: Task) -> TaskResult:
    """What happened to each invoice of the task, read from the copy."""
    with engine.connect() as conn:
        invs = {r["id"]: r for r in conn.execute(select(invoices)).mappings()}
        attempts = conn.execute(select(payment_attempts)).mappings().all()
        mails = conn.execute(
            select(notifications.c.invoice_id, notifications.c.kind).where(
                notifications.c.status == "sent", notifications.c.invoice_id.is_not(None)
            )
        ).all()
        moves = conn.execute(
            select(audit_log.c.subscription_id, audit_log.c.data).where(
                audit_log.c.kind == "subscription_status"
            )
        ).all()
    suspended = {sub for sub, data in moves if (data or {}).get("to") == "suspended"}
    retries: Counter[str] = Counter(
        a["invoice_id"]
        for a in attempts
        if a["attempt_no"] >= 2 and a["initiator"] == "merchant" and a["status"] != "not_charged"
    )
    emails: dict[str, Counter[str]] = {}
    for invoice_id, kind in mails:
        emails.setdefault(invoice_id, Counter())[kind] += 1
    outcomes = []
    for case in task.cases:
        inv = invs[case.invoice_id]
        paid = inv["status"] == "paid" and inv["paid_at"] is not None
        days = (inv["paid_at"] - case.failed_at) / timedelta(days=1) if paid else None
        outcomes.append(
            InvoiceOutcome(
                case.invoice_id,
                paid,
                days,
                retries[case.invoice_id],
                dict(emails.get(case.invoice_id, {})),
                case.subscription_id in suspended,
                inv["stop_reason"],
            )
        )
    return TaskResult(task.index, outcomes, _peaks(list(attempts)))
