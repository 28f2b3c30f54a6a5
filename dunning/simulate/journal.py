"""The simulation's output, read back from the audit log that production writes.

Nothing here re-derives what the pipeline did: each line is one audit row, in the order the
pipeline wrote them (causal order at equal instants).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from dunning.store.tables import audit_log, invoices, subscriptions

CARD_FIELDS = ("customer", "payment_method", "last4", "exp_month", "exp_year")
FIELDS: dict[str, tuple[str, ...]] = {
    "charge_attempt": (
        "invoice",
        "attempt",
        "payment_method",
        "result",
        "decline_code",
        "network_code",
        "advice_code",
        "initiator",
        "reason",
    ),
    "charge_resolved": ("invoice", "attempt", "result"),
    "retry_scheduled": ("invoice", "attempt", "due", "reason"),
    "retry_stopped": ("invoice", "reason"),
    "email": ("template", "to", "cc", "subject", "dedup_key", "link"),
    "subscription_status": ("subscription", "from", "to"),
    "invoice_status": ("invoice", "from", "to"),
    "card_added": CARD_FIELDS,
    "card_removed": CARD_FIELDS,
    "card_expiry_changed": CARD_FIELDS,
    "token_purged": ("payment_method", "reason"),
}


def iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str) and len(value) >= 19 and value[10] == "T":
        return iso(datetime.fromisoformat(value))
    return value


def to_line(
    row: Mapping[Any, Any], link_url: Callable[[str, Mapping[str, Any]], str] | None = None
) -> dict[str, Any] | None:
    """One audit row as an output line, or ``None`` for rows the format does not show. An
    email's link is stored as what rebuilds it; ``link_url(customer_id, ref)`` shows it."""
    kind = row["kind"]
    fields = FIELDS.get(kind)
    if fields is None:
        return None
    data = dict(row["data"] or {})
    columns = {
        "invoice": row["invoice_id"],
        "subscription": row["subscription_id"],
        "customer": row["customer_id"],
        "payment_method": row["payment_method_id"],
        "reason": row["reason"],
    }
    line: dict[str, Any] = {"at": iso(row["at"]), "kind": kind}
    for name in fields:
        value = data.get(name, columns.get(name))
        line[name] = iso(value) if name == "due" else value
    if kind == "email":
        line["cc"] = list(line["cc"] or [])
        if isinstance(line["link"], Mapping) and link_url is not None:
            line["link"] = link_url(row["customer_id"], line["link"])
    return line


def lines(
    engine: Engine, link_url: Callable[[str, Mapping[str, Any]], str] | None = None
) -> Iterator[dict[str, Any]]:
    with engine.connect() as conn:
        for row in conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings():
            line = to_line(row, link_url)
            if line is not None:
                yield line


def summary(engine: Engine, end: datetime, emitted: Counter[str], attempts: int) -> dict[str, Any]:
    """The last line: attempts, emails by kind, recovered and lost money, subscriptions."""
    recovered: dict[str, int] = defaultdict(int)
    lost: dict[str, int] = defaultdict(int)
    with engine.connect() as conn:
        for inv in conn.execute(
            select(invoices).where(invoices.c.first_failed_at.is_not(None))
        ).mappings():
            if inv["status"] == "paid":
                recovered[inv["currency"]] += inv["amount"]
            elif inv["status"] in ("open", "uncollectible") and inv["next_attempt_at"] is None:
                lost[inv["currency"]] += inv["amount"]
        subs: dict[Any, Any] = dict(
            conn.execute(
                select(subscriptions.c.status, func.count()).group_by(subscriptions.c.status)
            ).all()
        )
    return {
        "kind": "summary",
        "at": iso(end),
        "attempts": attempts,
        "emails": dict(sorted(emitted.items())),
        "recovered": dict(sorted(recovered.items())),
        "lost": dict(sorted(lost.items())),
        "subscriptions": {str(k): int(v) for k, v in sorted(subs.items())},
    }
