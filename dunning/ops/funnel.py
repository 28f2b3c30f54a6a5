"""The dunning funnel and the backlogs, read from the database.

One grouped pass over the open invoices gives every invoice stage and its amounts per currency;
the backlogs and lags read only the partial indexes of due rows, so their cost follows the due
work, not the size of the book.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from dunning.mail.formatting import money
from dunning.ops.overpayments import due_totals
from dunning.policy.config import PolicyBook
from dunning.policy.schedule import STEP_FINAL_NOTICE, dunning_steps
from dunning.store import inbox
from dunning.store.tables import (
    invoices,
    leader_leases,
    notifications,
    outbound_events,
    subscriptions,
    webhook_events,
)

WAITING_FOR_CARD = ("needs_new_card", "hard_decline")
RECOVERED_WINDOW = timedelta(days=30)
STAGES = (
    "past_due",
    "retrying",
    "waiting_for_card",
    "retries_stopped",
    "paused",
    "final_notice_sent",
    "suspended",
    "recovered_30d",
)
# Any fixed instant: only the order of the steps is read from it, not their times.
_REFERENCE = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class Stage:
    count: int = 0
    amounts: dict[str, int] = field(default_factory=dict)  # currency -> minor units

    def add(self, count: int, currency: str, amount: int) -> None:
        self.count += count
        self.amounts[currency] = self.amounts.get(currency, 0) + amount


@dataclass(frozen=True, slots=True)
class Backlog:
    """Due work of one producer: how much, and how late the oldest item is."""

    due: int
    oldest_due_at: datetime | None
    lag_s: float


NO_LEADER = "no lease held (a lone `dunning run` schedules without one)"


@dataclass(frozen=True, slots=True)
class Leader:
    """Who holds the scheduler's lease, and until when (``active`` while it has not run out)."""

    holder: str
    expires_at: datetime
    active: bool

    def describe(self) -> str:
        until = self.expires_at.isoformat(timespec="seconds")
        if self.active:
            return f"{self.holder} (lease until {until})"
        return f"none: the lease of {self.holder} ran out at {until}"


@dataclass
class Funnel:
    at: datetime
    stages: dict[str, Stage]
    suspended_subscriptions: int
    backlogs: dict[str, Backlog]
    outbox_pending: int
    outbox_oldest_pending_at: datetime | None
    outbound_failed: int
    refunds_due: Stage = field(default_factory=Stage)  # overpayments waiting for a refund
    scheduler: Leader | None = None  # None: no scheduler has ever run on this database
    events_failed: int = 0  # gateway webhook events that failed for good (`dunning dlq list`)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stages"] = {name: asdict(stage) for name, stage in self.stages.items()}
        out["refunds_due"] = asdict(self.refunds_due)
        return out


def _final_notice_index(book: PolicyBook, plan: str, interval: str) -> int | None:
    steps = dunning_steps(_REFERENCE, "UTC", book.for_plan(plan, interval))
    return next((s.index for s in steps if s.kind == STEP_FINAL_NOTICE), None)


def _flag(condition: ColumnElement[bool], name: str) -> Any:
    return case((condition, 1), else_=0).label(name)


def _open_stages(conn: Connection, book: PolicyBook, stages: dict[str, Stage]) -> None:
    i = invoices.c
    retrying = _flag(i.next_attempt_at.is_not(None), "retrying")
    waiting = _flag(i.stop_reason.in_(WAITING_FOR_CARD), "waiting")
    stopped = _flag(and_(i.next_attempt_at.is_(None), i.stop_reason.is_not(None)), "stopped")
    keys = [
        i.currency,
        subscriptions.c.status,
        subscriptions.c.plan,
        subscriptions.c.interval,
        i.steps_done,
        i.paused,
    ]
    stmt = (
        select(*keys, retrying, waiting, stopped, func.count(), func.sum(i.amount))
        .join(subscriptions, subscriptions.c.id == i.subscription_id)
        .where(i.status == "open")
        .group_by(*keys, retrying, waiting, stopped)
    )
    final_index: dict[tuple[str, str], int | None] = {}
    for cur, sub_status, plan, interval, steps_done, paused, r, w, s, n, total in conn.execute(
        stmt
    ):
        amount = int(total or 0)
        hits = ["past_due"]
        hits += ["retrying"] if r and not paused else []
        hits += ["waiting_for_card"] if w else []
        hits += ["retries_stopped"] if s and not w else []
        hits += ["paused"] if paused else []
        hits += ["suspended"] if sub_status == "suspended" else []
        if (plan, interval) not in final_index:
            final_index[(plan, interval)] = _final_notice_index(book, plan, interval)
        index = final_index[(plan, interval)]
        if index is not None and steps_done > index:
            hits.append("final_notice_sent")
        for name in hits:
            stages[name].add(int(n), cur, amount)


def _recovered(conn: Connection, since: datetime, stage: Stage) -> None:
    stmt = (
        select(invoices.c.currency, func.count(), func.sum(invoices.c.amount))
        .where(
            invoices.c.status == "paid",
            invoices.c.first_failed_at.is_not(None),
            invoices.c.paid_at >= since,
        )
        .group_by(invoices.c.currency)
    )
    for cur, n, total in conn.execute(stmt):
        stage.add(int(n), cur, int(total or 0))


def _backlog(
    conn: Connection, column: Any, where: Sequence[ColumnElement[bool]], now: datetime
) -> Backlog:
    due, oldest = conn.execute(select(func.count(), func.min(column)).where(*where)).one()
    lag = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return Backlog(int(due), oldest, lag)


def backlogs(conn: Connection, now: datetime) -> dict[str, Backlog]:
    """Due work per producer, each read from its partial index of due rows."""
    i, n, e, o = invoices.c, notifications.c, webhook_events.c, outbound_events.c
    open_ = i.status == "open"
    return {
        "retries": _backlog(
            conn,
            i.next_attempt_at,
            [open_, i.next_attempt_at.is_not(None), i.next_attempt_at <= now, i.paused.is_(False)],
            now,
        ),
        "steps": _backlog(
            conn, i.next_step_at, [open_, i.next_step_at.is_not(None), i.next_step_at <= now], now
        ),
        "emails": _backlog(conn, n.not_before, [n.status == "pending", n.not_before <= now], now),
        "events": _backlog(conn, e.received_at, [e.status == "received"], now),
        "outbound": _backlog(
            conn, o.next_attempt_at, [o.status == "pending", o.next_attempt_at <= now], now
        ),
    }


def funnel(conn: Connection, book: PolicyBook, now: datetime) -> Funnel:
    """Every funnel stage, the suspended subscriptions, the backlogs and their lags."""
    stages = {name: Stage() for name in STAGES}
    _open_stages(conn, book, stages)
    _recovered(conn, now - RECOVERED_WINDOW, stages["recovered_30d"])
    suspended = conn.execute(
        select(func.count()).where(subscriptions.c.status == "suspended")
    ).scalar_one()
    pending, oldest = conn.execute(
        select(func.count(), func.min(notifications.c.not_before)).where(
            notifications.c.status == "pending"
        )
    ).one()
    failed = conn.execute(
        select(func.count()).where(outbound_events.c.status == "failed")
    ).scalar_one()
    return Funnel(
        at=now,
        stages=stages,
        suspended_subscriptions=int(suspended),
        backlogs=backlogs(conn, now),
        outbox_pending=int(pending),
        outbox_oldest_pending_at=oldest,
        outbound_failed=int(failed),
        refunds_due=_refunds_due(conn),
        scheduler=_scheduler(conn),
        events_failed=inbox.count_failed(conn),
    )


def _scheduler(conn: Connection) -> Leader | None:
    """The scheduler's lease. Leases run on the real clock (the database's on PostgreSQL), not
    on the pipeline's, so whether it is live is asked of the same clock."""
    t = leader_leases.c
    live = t.expires_at > (func.now() if conn.dialect.name == "postgresql" else datetime.now(UTC))
    stmt = select(t.holder, t.expires_at, live).where(t.name == "scheduler")
    row = conn.execute(stmt).first()
    if row is None:
        return None
    return Leader(holder=row[0], expires_at=row[1], active=bool(row[2]))


def _refunds_due(conn: Connection) -> Stage:
    stage = Stage()
    for currency, (count, amount) in due_totals(conn).items():
        stage.add(count, currency, amount)
    return stage


def stage_rows(f: Funnel) -> list[tuple[str, int, str]]:
    """``(stage, count, amounts)`` rows for a table, amounts formatted per currency."""
    rows = []
    for name, stage in f.stages.items():
        ordered = sorted(stage.amounts.items(), key=lambda item: (-item[1], item[0]))
        amounts = ", ".join(money(v, cur, "en") or "" for cur, v in ordered)
        rows.append((name, stage.count, amounts))
    return rows
