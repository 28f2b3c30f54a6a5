"""``dunning customer show``: a customer's dunning state, whether an operator paused it (who,
when and why), and what it owes, formatted as ``dunning invoice show`` formats an invoice.

``--json`` prints :func:`customer_report`: the ``/ops/api`` customer state (docs/api.md) with the
customer's name and email and the last pause or resume.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from sqlalchemy import Connection, select

from dunning.mail.formatting import money
from dunning.ops.invoice_view import when, words
from dunning.ops.state import customer_state
from dunning.policy.config import PolicyBook
from dunning.store import rows
from dunning.store.tables import audit_log, customers

PAUSE_KINDS = {"operator_pause_customer": "paused", "operator_resume_customer": "resumed"}


def _last_hold(conn: Connection, customer_id: str) -> dict[str, Any] | None:
    """The customer's last pause or resume as audited: what, when, by whom and why."""
    row = (
        conn.execute(
            select(audit_log)
            .where(audit_log.c.customer_id == customer_id, audit_log.c.kind.in_(PAUSE_KINDS))
            .order_by(audit_log.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    action = PAUSE_KINDS[row["kind"]]
    return {"action": action, "at": row["at"], "by": row["actor"], "reason": row["message"]}


def customer_report(
    conn: Connection, book: PolicyBook, customer_id: str, now: datetime
) -> dict[str, Any]:
    """The customer's state; :class:`~dunning.errors.NotFound` when there is no such customer."""
    cust = rows.get(conn, customers, customer_id)
    report = customer_state(conn, book, customer_id, now)
    report.update(name=cust["name"], email=cust["email"], last_hold=_last_hold(conn, customer_id))
    return report


def _paused(report: dict[str, Any]) -> str:
    hold = report["last_hold"]
    text = "yes" if report["paused"] else "no"
    if hold is not None:
        text += f" ({hold['action']} {when(hold['at'])} by {hold['by']}: {hold['reason']})"
    return text


def _head(report: dict[str, Any]) -> Table:
    head = Table.grid(padding=(0, 2))
    state = "dunning paused" if report["paused"] else "dunning not paused"
    head.title = f"customer {report['customer_id']}: {state}"
    head.title_justify = "left"
    head.add_column(style="bold", no_wrap=True)
    head.add_column(overflow="fold")
    owed = ", ".join(a["text"] for a in report["amounts_owed"] if a["amount"]) or "nothing"
    subs = [
        f"{s['subscription_id']}: {s['plan']}, {words(s['status'])}"
        for s in report["subscriptions"]
    ]
    rows_ = [
        ("customer", f"{report['name'] or '-'} <{report['email']}>"),
        ("paused", _paused(report)),
        ("owes", owed),
        ("next retry", when(report["next_retry_at"]) if report["next_retry_at"] else "none"),
        ("subscriptions", "; ".join(subs) or "none"),
    ]
    for label, value in rows_:
        head.add_row(label, value)
    return head


def _invoices(report: dict[str, Any]) -> Table:
    table = Table("invoice", "status", "amount", "failed charges", "next retry", title="invoices")
    table.columns[0].overflow = "fold"
    for inv in report["invoices"]:
        table.add_row(
            inv["invoice_id"],
            words(inv["status"]) + (", paused" if inv["paused"] else ""),
            money(inv["amount"], inv["currency"], "en") or "-",
            str(inv["failed_attempts"]),
            when(inv["next_retry_at"]) if inv["next_retry_at"] else "none",
        )
    return table


def customer_tables(report: dict[str, Any]) -> list[RenderableType]:
    """The customer's summary, then the invoices it owes (when there are any)."""
    parts: list[RenderableType] = [_head(report)]
    if report["invoices"]:
        parts.append(_invoices(report))
    return parts
