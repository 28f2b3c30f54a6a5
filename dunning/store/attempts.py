"""Charge attempts in the store: by idempotency key, inserts, decline columns, card histories.

An attempt row is written, with its idempotency key ``inv_<invoice>_att_<n>``, before the
gateway is called; its ``created_at`` is when it was last stamped as about to be sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update

from dunning.model import UNRESOLVED, AttemptStatus, Initiator
from dunning.policy.types import AttemptRecord, Decline
from dunning.store.tables import payment_attempts

CODE_COLUMNS = ("decline_code", "network_code", "advice_code", "network_advice_code")


def idempotency_key(invoice_id: str, attempt_no: int) -> str:
    """The gateway idempotency key of attempt ``attempt_no`` of an invoice."""
    return f"inv_{invoice_id}_att_{attempt_no}"


def decline_columns(decline: Decline | None) -> dict[str, str | None]:
    """The four decline-code columns of an attempt (all ``None`` for no decline)."""
    if decline is None:
        return dict.fromkeys(CODE_COLUMNS)
    return {
        "decline_code": decline.decline_code,
        "network_code": decline.network_code,
        "advice_code": decline.advice_code,
        "network_advice_code": decline.network_advice_code,
    }


def new_row(
    invoice: Mapping[Any, Any],
    card: Mapping[Any, Any],
    attempt_no: int,
    *,
    initiator: Initiator,
    reason: str,
    at: datetime,
    status: AttemptStatus = AttemptStatus.pending,
) -> dict[str, Any]:
    """A ``payment_attempts`` row for attempt ``attempt_no`` of ``invoice`` on ``card``."""
    return {
        "idempotency_key": idempotency_key(invoice["id"], attempt_no),
        "invoice_id": invoice["id"],
        "attempt_no": attempt_no,
        "customer_id": invoice["customer_id"],
        "payment_method_id": card["id"],
        "network": card["network"],
        "amount": invoice["amount"],
        "currency": invoice["currency"],
        "initiator": initiator.value,
        "status": status.value,
        "reason": reason,
        "created_at": at,
    }


def insert_rows(conn: Connection, rows: Sequence[Mapping[Any, Any]]) -> None:
    if rows:
        conn.execute(insert(payment_attempts), list(rows))


def by_key(conn: Connection, key: str) -> RowMapping | None:
    stmt = select(payment_attempts).where(payment_attempts.c.idempotency_key == key)
    return conn.execute(stmt).mappings().first()


def by_keys(conn: Connection, keys: Iterable[str]) -> dict[str, RowMapping]:
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    stmt = select(payment_attempts).where(payment_attempts.c.idempotency_key.in_(wanted))
    return {r["idempotency_key"]: r for r in conn.execute(stmt).mappings()}


def exists(conn: Connection, key: str) -> bool:
    stmt = select(payment_attempts.c.id).where(payment_attempts.c.idempotency_key == key)
    return conn.execute(stmt).first() is not None


def in_flight(conn: Connection, invoice_ids: Iterable[str]) -> dict[str, str]:
    """The invoices among ``invoice_ids`` with a charge whose outcome is not known yet, and the
    idempotency key of that charge."""
    wanted = list(dict.fromkeys(invoice_ids))
    if not wanted:
        return {}
    rows = conn.execute(
        select(payment_attempts.c.invoice_id, payment_attempts.c.idempotency_key).where(
            payment_attempts.c.invoice_id.in_(wanted),
            payment_attempts.c.status.in_(list(UNRESOLVED)),
        )
    )
    return {invoice_id: key for invoice_id, key in rows}


def record(row: Mapping[Any, Any]) -> AttemptRecord:
    """An attempt as the pure policy sees it."""
    return AttemptRecord(
        at=row["created_at"],
        invoice_id=row["invoice_id"],
        payment_method_id=row["payment_method_id"],
        network=row["network"],
        amount=row["amount"],
        initiator=row["initiator"],
        status=row["status"],
        **{name: row[name] for name in CODE_COLUMNS},
    )


def answered_before(conn: Connection, invoice_id: str, attempt_no: int) -> bool:
    """Whether an attempt of the invoice before ``attempt_no`` got an answer (declined or
    succeeded); attempts that were never made or never answered do not count."""
    a = payment_attempts.c
    stmt = select(a.id).where(
        a.invoice_id == invoice_id,
        a.attempt_no < attempt_no,
        a.status.in_(["declined", "succeeded"]),
    )
    return conn.execute(stmt.limit(1)).first() is not None


def for_invoice(conn: Connection, invoice_id: str) -> tuple[AttemptRecord, ...]:
    """The invoice's attempts, oldest first (attempt 1 is the original failed charge)."""
    rows = conn.execute(
        select(payment_attempts)
        .where(payment_attempts.c.invoice_id == invoice_id)
        .order_by(payment_attempts.c.attempt_no)
    ).mappings()
    return tuple(record(r) for r in rows)


def for_invoices(
    conn: Connection, invoice_ids: Iterable[str]
) -> dict[str, tuple[AttemptRecord, ...]]:
    """:func:`for_invoice` of many invoices in one statement (an invoice without any: empty)."""
    wanted = list(dict.fromkeys(invoice_ids))
    out: dict[str, list[AttemptRecord]] = {invoice_id: [] for invoice_id in wanted}
    if wanted:
        rows = conn.execute(
            select(payment_attempts)
            .where(payment_attempts.c.invoice_id.in_(wanted))
            .order_by(payment_attempts.c.invoice_id, payment_attempts.c.attempt_no)
        ).mappings()
        for r in rows:
            out[r["invoice_id"]].append(record(r))
    return {invoice_id: tuple(records) for invoice_id, records in out.items()}


def card_histories(
    conn: Connection, card_ids: Iterable[str], since: datetime
) -> dict[str, tuple[AttemptRecord, ...]]:
    """Each card's attempts since ``since``, oldest first: what the network limits count."""
    wanted = list(dict.fromkeys(card_ids))
    out: dict[str, list[AttemptRecord]] = {card_id: [] for card_id in wanted}
    if not wanted:
        return {}
    rows = conn.execute(
        select(payment_attempts)
        .where(
            payment_attempts.c.payment_method_id.in_(wanted),
            payment_attempts.c.created_at >= since,
        )
        .order_by(payment_attempts.c.created_at, payment_attempts.c.id)
    ).mappings()
    for r in rows:
        out[r["payment_method_id"]].append(record(r))
    return {card_id: tuple(records) for card_id, records in out.items()}


def stamp(conn: Connection, keys: Sequence[str], at: datetime) -> set[str]:
    """Stamp the attempts among ``keys`` that are still ``pending`` as sent at ``at``; return
    their keys. One the resolver settled meanwhile is not stamped, and must not be sent."""
    if not keys:
        return set()
    return set(
        conn.execute(
            update(payment_attempts)
            .where(
                payment_attempts.c.idempotency_key.in_(list(keys)),
                payment_attempts.c.status == AttemptStatus.pending.value,
            )
            .values(created_at=at)
            .returning(payment_attempts.c.idempotency_key)
        ).scalars()
    )
