"""``dunning invoice show`` as a person reads it: money with its currency, times in UTC to the
minute, yes and no for flags, and tables that wrap to the terminal (80 columns and up).

``--json`` prints :func:`~dunning.ops.timeline.invoice_report` itself; this only presents it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import RenderableType
from rich.table import Table

from dunning.mail.formatting import NETWORK_NAMES, money

INTERVALS = {"month": "monthly", "year": "yearly", "week": "weekly", "day": "daily"}


def when(value: datetime | str | None) -> str:
    """``2026-03-02 10:00 UTC``; ``-`` for none."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def yes_no(value: object) -> str:
    return "yes" if value else "no"


def words(code: str | None) -> str:
    """``past_due`` -> ``past due``; ``-`` for none."""
    return code.replace("_", " ") if code else "-"


def card_text(card: dict[str, Any] | None) -> str:
    if card is None:
        return "none on file"
    brand = NETWORK_NAMES.get(str(card["brand"]), str(card["brand"]).capitalize())
    text = f"{brand} •••• {card['last4']}, expires {card['exp']}, {words(card['status'])}"
    if card.get("blocked_reason"):
        text += f", blocked: {words(card['blocked_reason'])}"
    return text


def _head(report: dict[str, Any]) -> Table:
    inv, sub, cust = report["invoice"], report["subscription"], report["customer"]
    amount = money(inv["amount"], inv["currency"], "en") or "-"
    head = Table.grid(padding=(0, 2))
    head.title = f"invoice {inv['id']}: {words(inv['status'])}, {amount}"
    head.title_justify = "left"
    head.add_column(style="bold", no_wrap=True)
    head.add_column(overflow="fold")
    interval = INTERVALS.get(sub["interval"], sub["interval"])
    rows = [
        ("customer", f"{cust['name'] or '-'} <{cust['email']}> ({cust['id']})"),
        ("", f"time zone {cust['timezone'] or 'UTC'}, locale {cust['locale']}"),
        ("subscription", f"{sub['id']}: {sub['plan']}, {interval}, {words(sub['status'])}"),
        ("card", card_text(report["card"])),
        ("failed charges", f"{inv['attempt_count']}, the first {when(inv['first_failed_at'])}"),
        ("last decline", _decline(report)),
        ("next retry", _next_retry(inv)),
        ("next step", f"{when(inv['next_step_at'])} ({inv['steps_done']} done)"),
        ("retries stopped", words(inv["stop_reason"]) if inv["stop_reason"] else "no"),
        ("paused", yes_no(inv["paused"])),
        ("paid", when(inv["paid_at"]) if inv["paid_at"] else "no"),
        ("created", when(inv["created_at"])),
    ]
    for label, value in rows:
        head.add_row(label, value)
    return head


def _decline(report: dict[str, Any]) -> str:
    """The last decline as the gateway gave it, then how the policy classed it."""
    inv = report["invoice"]
    declined = [a for a in report["attempts"] if a["decline_code"]]
    if declined:
        last = declined[-1]
        text = str(last["decline_code"])
        if last["network_code"]:
            text += f", network code {last['network_code']}"
    elif inv["last_decline_code"]:
        text = str(inv["last_decline_code"])
    else:
        return "-"
    classed = [words(x) for x in (inv["last_decline_code"], inv["last_decline_class"]) if x]
    if declined and classed:
        text += f" ({': '.join(classed)})"
    return text


def detail(entry: dict[str, Any]) -> str:
    """One timeline entry in words: why, what changed, and the data worth reading."""
    data = entry["data"]
    parts = [words(entry["reason"])] if entry["reason"] else []
    transition = "from" in data and "to" in data
    if transition:
        parts.append(f"{words(data['from']) if data['from'] else 'new'} → {words(data['to'])}")
    for key in ("attempt", "result", "decline_code", "template"):
        if data.get(key) is not None:
            parts.append(f"{key.replace('_', ' ')} {data[key]}")
    if data.get("due"):
        parts.append(f"due {when(data['due'])}")
    if data.get("to") and not transition:
        parts.append(f"to {data['to']}")
    if entry["message"] and entry["message"] != entry["reason"]:
        parts.append(entry["message"])
    return "; ".join(parts)


def _next_retry(inv: dict[str, Any]) -> str:
    if inv["next_attempt_at"] is None:
        return "none"
    reason = inv["next_attempt_reason"]
    return when(inv["next_attempt_at"]) + (f" ({words(reason)})" if reason else "")


def _attempts(report: dict[str, Any]) -> Table:
    table = Table("#", "at", "result", "by", "card", "decline", "reason", title="attempts")
    table.columns[5].overflow = table.columns[6].overflow = "fold"
    for a in report["attempts"]:
        decline = " ".join(x for x in (a["decline_code"], a["network_code"]) if x)
        table.add_row(
            str(a["attempt_no"]),
            when(a["created_at"]),
            words(a["status"]),
            a["initiator"],
            a["payment_method_id"],
            decline or "-",
            words(a["reason"]),
        )
    return table


def _timeline(report: dict[str, Any]) -> Table:
    table = Table("at", "what", "by", "detail", title="timeline")
    table.columns[3].overflow = "fold"
    for entry in report["timeline"]:
        table.add_row(when(entry["at"]), words(entry["kind"]), entry["actor"], detail(entry))
    return table


def invoice_tables(report: dict[str, Any]) -> list[RenderableType]:
    """The invoice's summary, its attempts (when there are any) and its timeline."""
    parts: list[RenderableType] = [_head(report)]
    if report["attempts"]:
        parts.append(_attempts(report))
    parts.append(_timeline(report))
    return parts
