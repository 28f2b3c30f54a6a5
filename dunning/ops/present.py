"""Rich tables for the operator commands (``--json`` prints the same data as JSON)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from dunning.mail.formatting import money
from dunning.ops.deadletters import DeadLetter
from dunning.ops.funnel import NO_LEADER, Funnel, stage_rows
from dunning.ops.queues import QueueStats
from dunning.ops.timeline import iso
from dunning.store.inbox import FailedEvent


def duration(seconds: float | None) -> str:
    """``95`` -> ``1m35s``; ``None`` -> ``-``."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def count(value: int | None) -> str:
    """A count, or ``-`` where the broker does not say."""
    return "-" if value is None else str(value)


def queues_table(stats: Sequence[QueueStats]) -> Table:
    table = Table("queue", "ready", "delayed", "in flight", "orphaned", "dead", "oldest ready")
    for q in stats:
        table.add_row(
            q.queue,
            str(q.ready),
            str(q.delayed),
            count(q.in_flight),
            f"[yellow]{q.orphaned}[/]" if q.orphaned else count(q.orphaned),
            f"[red]{q.dead}[/]" if q.dead else "0",
            duration(q.oldest_ready_age_s),
        )
    return table


def dead_table(letters: Sequence[DeadLetter], now_ms: int) -> Table:
    table = Table("id", "actor", "queue", "died", "retries", "args", "error")
    for d in letters:
        table.add_row(
            d.id,
            d.actor,
            d.queue,
            duration(d.age_s(now_ms)) + " ago",
            str(d.retries),
            d.args,
            d.error or "",
        )
    return table


def failed_events_table(events: Sequence[FailedEvent]) -> Table:
    table = Table("id", "provider", "event", "type", "received", "failed", "error")
    table.title = "gateway events failed for good"
    for e in events:
        table.add_row(
            str(e.id), e.provider, e.event_id, e.type, iso(e.received_at), iso(e.failed_at),
            e.error or "",
        )  # fmt: skip
    return table


def funnel_tables(f: Funnel) -> list[Table]:
    stages = Table("stage", "invoices", "amount", title="dunning funnel")
    for name, count, amounts in stage_rows(f):
        stages.add_row(name.replace("_", " "), str(count), amounts)
    stages.add_row("suspended subscriptions", str(f.suspended_subscriptions), "")
    refunds = f.refunds_due
    amounts = ", ".join(money(v, cur, "en") or "" for cur, v in sorted(refunds.amounts.items()))
    stages.add_row("refunds due (dunning refunds list)", str(refunds.count), amounts)
    backlog = Table("work", "due now", "oldest due", "lag", title="backlogs")
    for name, b in f.backlogs.items():
        backlog.add_row(name, str(b.due), iso(b.oldest_due_at), duration(b.lag_s))
    backlog.add_row(
        "outbox (all pending)", str(f.outbox_pending), iso(f.outbox_oldest_pending_at), ""
    )
    backlog.add_row("webhooks failed for good", str(f.outbound_failed), "", "")
    failed = f"[red]{f.events_failed}[/]" if f.events_failed else "0"
    backlog.add_row("gateway events failed", failed, "", "")  # dunning dlq list
    leader = f.scheduler.describe() if f.scheduler else NO_LEADER
    backlog.caption = f"scheduler leader: {leader}"
    return [stages, backlog]
