"""Write one chunk of validated lines in one transaction, with multi-row upserts.

:func:`prepare` builds a chunk's rows and parameters without the database (on the reading
thread, while the previous chunk is written); :func:`write_chunk` looks up what is stored and
uses them, or rebuilds them in the rare case the stored state changes a row.

Order matters: customers, then the default-card flip (the old default is cleared before the
new one is set, because a partial unique index allows one default per customer), cards,
subscriptions, invoices (inserted once: after that the pipeline owns them), their audit rows,
and last the ``active -> past_due`` move of subscriptions that got an open invoice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, update
from sqlalchemy.engine import Dialect

from dunning.imports.checks import LineError
from dunning.imports.lines import CustomerLine
from dunning.imports.lookup import lookup
from dunning.imports.rows import ChunkRows, build_rows
from dunning.imports.state import Existing, needs_state, ownership_errors, state_changes
from dunning.imports.upsert import encode_rows, id_in, insert_new, insert_rows, upsert
from dunning.model import SubscriptionStatus, allowed_sources
from dunning.store.tables import audit_log, customers, invoices, payment_methods, subscriptions

log = logging.getLogger(__name__)

CUSTOMER_COLUMNS = ("email", "name", "locale", "timezone", "billing_emails")
CARD_COLUMNS = ("gateway", "token", "network", "last4", "exp_month", "exp_year", "is_default")
SUBSCRIPTION_COLUMNS = ("plan", "amount", "currency", "interval", "payment_method_id")


@dataclass
class ChunkResult:
    """Line numbers by outcome."""

    inserted: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    refused: list[LineError] = field(default_factory=list)

    def merge(self, other: ChunkResult) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.refused += other.refused


@dataclass
class Prepared:
    """A chunk's rows and their JSON parameters (by table name), built before the lookup."""

    rows: ChunkRows
    payloads: dict[str, str]


def prepare(dialect: Dialect, lines: Sequence[CustomerLine], now: datetime) -> Prepared:
    """Rows and parameters for ``lines`` as if nothing were stored (what is nearly always so)."""
    rows = build_rows(list(lines), Existing(), now)
    tables = ((customers, rows.customers), (payment_methods, rows.cards),
              (subscriptions, rows.subscriptions), (invoices, rows.invoices))  # fmt: skip
    return Prepared(rows, {t.name: encode_rows(dialect, t, r) for t, r in tables if r})


class StoredElsewhere(Exception):
    """A new customer's card, subscription or invoice id is stored under another customer.

    Raised (and the transaction rolled back) only after a partial lookup; the chunk is then
    written again with ``full=True``, which refuses the line that names it.
    """


def write_chunk(
    conn: Connection,
    batch: Sequence[tuple[int, CustomerLine]],
    now: datetime,
    prepared: Prepared | None = None,
    *,
    full: bool = False,
) -> ChunkResult:
    """Load ``(line number, customer)`` pairs; the caller owns the transaction.

    ``prepared`` is :func:`prepare` of the same lines, used when the stored state allows;
    ``full`` looks up every id first (see :mod:`dunning.imports.lookup`).
    """
    result = ChunkResult()
    existing = lookup(conn, [c for _, c in batch], full=full)
    good: list[tuple[int, CustomerLine]] = []
    for lineno, c in batch:
        errors = ownership_errors(lineno, c, existing)
        if errors:
            result.refused.extend(errors)
        else:
            good.append((lineno, c))
    lines = [c for _, c in good]
    if prepared is not None and not result.refused and not needs_state(lines, existing):
        rows, payloads = prepared.rows, prepared.payloads
    else:
        rows, payloads = build_rows(lines, existing, now), {}
    changes = state_changes(lines, existing)
    touched = upsert(
        conn,
        customers,
        rows.customers,
        now=now,
        update=CUSTOMER_COLUMNS,
        forward_only=("last_payment_at",),
        payload=payloads.get(customers.name),
    )
    card_changed = _clear_old_defaults(conn, changes.old_defaults, now)
    written = upsert(
        conn,
        payment_methods,
        rows.cards,
        now=now,
        update=CARD_COLUMNS,
        same=("customer_id",),
        guard=payment_methods.c.status == "active",
        payload=payloads.get(payment_methods.name),
    )
    written_cards = written
    card_changed |= {rows.owner[key] for key in written}
    _bump_card_generation(conn, sorted(card_changed & existing.customers), now)
    touched |= card_changed
    written = upsert(
        conn,
        subscriptions,
        rows.subscriptions,
        now=now,
        update=SUBSCRIPTION_COLUMNS,
        forward_only=("current_period_end", "last_payment_at"),
        same=("customer_id",),
        payload=payloads.get(subscriptions.name),
    )
    written_subs = written
    touched |= {rows.owner[key] for key in written}
    touched |= _apply_statuses(conn, changes.explicit_status, now)
    new_invoices = insert_new(
        conn, invoices, rows.invoices, now=now, payload=payloads.get(invoices.name)
    )
    if not full:
        _check_new_children(lines, existing, written_cards | written_subs | new_invoices)
    if new_invoices:
        insert_rows(conn, audit_log, [rows.audit[key] for key in sorted(new_invoices)])
        touched |= {rows.owner[key] for key in new_invoices}
        subs_in_dunning = sorted({rows.invoice_subscription[key] for key in new_invoices})
        _move_subscriptions(conn, subs_in_dunning, SubscriptionStatus.past_due, now)
    for lineno, c in good:
        if c.id not in existing.customers:
            result.inserted.append(lineno)
        elif c.id in touched:
            result.updated.append(lineno)
        else:
            result.unchanged.append(lineno)
    log.debug(
        "chunk: %d inserted, %d updated, %d unchanged, %d refused",
        len(result.inserted),
        len(result.updated),
        len(result.unchanged),
        len(result.refused),
    )
    return result


def _check_new_children(
    lines: Sequence[CustomerLine], existing: Existing, written: set[str]
) -> None:
    for c in lines:
        if c.id in existing.customers:
            continue
        ids = [pm.id for pm in c.payment_methods] + [s.id for s in c.subscriptions]
        if not written.issuperset(ids + [inv.id for inv in c.invoices]):
            raise StoredElsewhere(c.id)


def _clear_old_defaults(conn: Connection, ids: list[str], now: datetime) -> set[str]:
    """Unset the default flag of these cards; return their customers."""
    pm = payment_methods.c
    changed: set[str] = set()
    if ids:
        stmt = (
            update(payment_methods)
            .where(id_in(conn, pm.id, ids), pm.is_default, pm.status == "active")
            .values(is_default=False, updated_at=now)
            .returning(pm.customer_id)
        )
        changed.update(conn.scalars(stmt))
    return changed


def _bump_card_generation(conn: Connection, ids: list[str], now: datetime) -> None:
    # Links carry the generation: a card changed by an import invalidates older links too.
    if ids:
        conn.execute(
            update(customers)
            .where(id_in(conn, customers.c.id, ids))
            .values(card_generation=customers.c.card_generation + 1, updated_at=now)
        )


def _apply_statuses(conn: Connection, wanted: dict[str, str], now: datetime) -> set[str]:
    touched: set[str] = set()
    for status in sorted(set(wanted.values())):
        ids = sorted(key for key, value in wanted.items() if value == status)
        touched |= _move_subscriptions(conn, ids, SubscriptionStatus(status), now)
    return touched


def _move_subscriptions(
    conn: Connection, ids: list[str], target: SubscriptionStatus, now: datetime
) -> set[str]:
    """Move subscriptions to ``target`` where the lifecycle allows it; return their customers."""
    sc = subscriptions.c
    values: dict[str, object] = {"status": str(target), "updated_at": now}
    if target is SubscriptionStatus.suspended:
        values["suspended_at"] = now
    elif target is SubscriptionStatus.cancelled:
        values["cancelled_at"] = now
    touched: set[str] = set()
    if ids:
        stmt = (
            update(subscriptions)
            .where(id_in(conn, sc.id, ids), sc.status.in_(sorted(allowed_sources(target))))
            .values(values)
            .returning(sc.customer_id)
        )
        touched.update(conn.scalars(stmt))
    return touched
