"""One invoice's whole story for the ``/ops`` invoice page: its audit rows (status moves,
retries planned and stopped, operator actions), its charge attempts, its emails, the gateway
events that name it, the webhooks sent to the merchant about it, and its subscription's status
moves, merged in time order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from dunning.ops.invoice_view import detail, words
from dunning.ops.timeline import invoice_report
from dunning.store import invoice_history, rows
from dunning.store.tables import customers


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _entry(at: datetime, what: str, by: str, text: str, source: str) -> dict[str, Any]:
    return {"at": _utc(at), "what": what, "by": by, "detail": text, "source": source}


def _audits(timeline: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_entry(e["at"], words(e["kind"]), e["actor"], detail(e), "audit") for e in timeline]


def _attempts(attempts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for a in attempts:
        decline = " ".join(x for x in (a["decline_code"], a["network_code"]) if x)
        text = f"#{a['attempt_no']} on {a['payment_method_id']}: {words(a['status'])}"
        text += f", {decline}" if decline else ""
        text += f" ({words(a['reason'])})" if a["reason"] else ""
        out.append(_entry(a["created_at"], "charge sent", a["initiator"], text, "attempt"))
    return out


def _emails(conn: Connection, invoice_id: str) -> list[dict[str, Any]]:
    out = []
    for n in invoice_history.emails(conn, invoice_id):
        text = f"{words(n['kind'])} to {n['to_addr']}: {n['status']}"
        if n["sent_at"] is not None:
            text += f" at {_utc(n['sent_at']).strftime('%Y-%m-%d %H:%M UTC')}"
        if n["last_error"]:
            text += f"; {n['last_error']}"
        out.append(_entry(n["created_at"], "email", "system", text, "email"))
    return out


def _events(conn: Connection, invoice_id: str, subscription_id: str) -> list[dict[str, Any]]:
    out = [
        _entry(e["received_at"], "gateway event", e["provider"],
               f"{e['type']} ({e['event_id']}): {e['status']}" + (
                   f"; {e['error']}" if e["error"] else ""), "event")
        for e in invoice_history.gateway_events(conn, invoice_id)
    ]  # fmt: skip
    out += [
        _entry(o["created_at"], "webhook to merchant", "system",
               f"{o['type']}: delivered to {o['delivered'] or 0} of {o['endpoints']} endpoints",
               "outbound")
        for o in invoice_history.outbound(conn, invoice_id)
    ]  # fmt: skip
    moves = invoice_history.subscription_moves(conn, subscription_id)
    out += [
        _entry(m["at"], "subscription status", m["actor"],
               detail({"reason": m["reason"], "message": m["message"], "data": m["data"] or {}}),
               "audit")
        for m in moves
    ]  # fmt: skip
    return out


def invoice_history_report(conn: Connection, invoice_id: str) -> dict[str, Any]:
    """:func:`~dunning.ops.timeline.invoice_report` with ``history``: every entry in time
    order (ties keep the order the kinds are listed above)."""
    report = invoice_report(conn, invoice_id)
    customer = rows.get(conn, customers, report["customer"]["id"])
    report["customer"]["dunning_paused"] = bool(customer["dunning_paused"])
    entries = _audits(report["timeline"]) + _attempts(report["attempts"])
    entries += _emails(conn, invoice_id)
    entries += _events(conn, invoice_id, report["subscription"]["id"])
    order = {id(e): i for i, e in enumerate(entries)}
    report["history"] = sorted(entries, key=lambda e: (e["at"], order[id(e)]))
    return report
