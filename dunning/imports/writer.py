"""Write one chunk of validated lines in one transaction, with COPY or multi-row upserts.

:func:`prepare` builds a chunk's rows (and, on SQLite, their JSON parameters) without the
database, on the reading thread while the previous chunk is written; :func:`write_chunk` looks
up what is stored and uses them, or rebuilds them in the rare case the stored state changes a
row.

On PostgreSQL a chunk none of whose customers is stored (every chunk of a first import) is
COPYed straight into the tables; any other chunk is COPYed into staging tables
(:mod:`dunning.imports.staging`) and upserted from there. SQLite upserts from JSON.

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
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError

from dunning.imports.checks import LineError
from dunning.imports.lines import CustomerLine
from dunning.imports.lookup import lookup
from dunning.imports.moves import (
    apply_statuses,
    bump_card_generation,
    clear_old_defaults,
    move_subscriptions,
)
from dunning.imports.rows import (
    ATTEMPT_FIELDS,
    AUDIT_FIELDS,
    CARD_FIELDS,
    CUSTOMER_FIELDS,
    INVOICE_FIELDS,
    SUBSCRIPTION_FIELDS,
    ChunkRows,
    build_rows,
)
from dunning.imports.staging import copy_rows, stage
from dunning.imports.state import Existing, needs_state, ownership_errors, state_changes
from dunning.imports.upsert import Write, append_rows, encode_rows, write_rows
from dunning.model import SubscriptionStatus
from dunning.store.tables import (
    audit_log,
    customers,
    invoices,
    payment_attempts,
    payment_methods,
    subscriptions,
)

log = logging.getLogger(__name__)

CUSTOMER_COLUMNS = ("email", "name", "locale", "timezone", "billing_emails")
CARD_COLUMNS = ("gateway", "token", "network", "last4", "exp_month", "exp_year", "is_default")
SUBSCRIPTION_COLUMNS = ("plan", "amount", "currency", "interval", "payment_method_id")

CUSTOMERS = Write(
    customers, CUSTOMER_FIELDS, update=CUSTOMER_COLUMNS, forward_only=("last_payment_at",)
)
CARDS = Write(
    payment_methods,
    CARD_FIELDS,
    update=CARD_COLUMNS,
    same=("customer_id",),
    guard=payment_methods.c.status == "active",
)
SUBSCRIPTIONS = Write(
    subscriptions,
    SUBSCRIPTION_FIELDS,
    update=SUBSCRIPTION_COLUMNS,
    forward_only=("current_period_end", "last_payment_at"),
    same=("customer_id",),
)
INVOICES = Write(invoices, INVOICE_FIELDS, new_only=True)  # after that the pipeline owns them


@dataclass
class ChunkResult:
    """Line numbers by outcome."""

    inserted: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    refused: list[LineError] = field(default_factory=list)
    new_invoices: list[str] = field(default_factory=list)  # inserted by this chunk

    def merge(self, other: ChunkResult) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.refused += other.refused
        self.new_invoices += other.new_invoices


@dataclass
class Prepared:
    """A chunk's rows and, on SQLite, their JSON parameters (by table name), built before the
    lookup."""

    rows: ChunkRows
    payloads: dict[str, str]


def prepare(dialect: Dialect, lines: Sequence[CustomerLine], now: datetime) -> Prepared:
    """Rows and parameters for ``lines`` as if nothing were stored (what is nearly always so)."""
    rows = build_rows(list(lines), Existing(), now)
    if dialect.name == "postgresql":
        return Prepared(rows, {})  # COPY encodes them while writing, in the driver's C code
    payloads = {spec.table.name: encode_rows(dialect, spec.table, data)
                for spec, data in _by_spec(rows) if data}  # fmt: skip
    return Prepared(rows, payloads)


def _by_spec(rows: ChunkRows) -> list[tuple[Write, list[dict[str, Any]]]]:
    return [(CUSTOMERS, rows.customers), (CARDS, rows.cards),
            (SUBSCRIPTIONS, rows.subscriptions), (INVOICES, rows.invoices)]  # fmt: skip


class StoredElsewhere(Exception):
    """A new customer's card, subscription or invoice id is stored under another customer.

    Raised (and the transaction rolled back) only after a partial lookup; the chunk is then
    written again with ``full=True``, which refuses the line that names it. On PostgreSQL it
    also stands for any unique clash of :func:`_insert_new`, such as a customer inserted by
    another writer since the lookup: the upserts of the second try handle it.
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
    if not full and not existing.customers and conn.dialect.name == "postgresql":
        touched = _insert_new(conn, rows, now)
        result.new_invoices = sorted(rows.audit)
    else:
        touched, new_invoices = _upsert(conn, lines, existing, rows, payloads, now, full=full)
        result.new_invoices = sorted(new_invoices)
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


def _insert_new(conn: Connection, rows: ChunkRows, now: datetime) -> set[str]:
    """PostgreSQL, no customer of the chunk stored: COPY every row straight into its table.

    No staging and no ``ON CONFLICT``: a quarter less work for the database on a first
    import. A child id stored under another customer (or a customer inserted since the lookup)
    fails the COPY, and :class:`StoredElsewhere` has the chunk written again with upserts.
    """
    try:
        for spec, data in _by_spec(rows):
            copy_rows(conn, spec.table.name, spec.table, spec.fields, data, stamp=now)
    except IntegrityError as exc:
        raise StoredElsewhere(exc.orig) from exc
    if rows.invoices:
        _new_invoice_rows(conn, rows, sorted(rows.audit))
        subs_in_dunning = sorted(set(rows.invoice_subscription.values()))
        move_subscriptions(conn, subs_in_dunning, SubscriptionStatus.past_due, now)
    return set()  # every line is new: nothing to tell apart as updated


def _upsert(
    conn: Connection,
    lines: list[CustomerLine],
    existing: Existing,
    rows: ChunkRows,
    payloads: dict[str, str],
    now: datetime,
    *,
    full: bool,
) -> tuple[set[str], set[str]]:
    """Insert or update every row, in the order the constraints need; return the customers
    whose rows changed and the invoices inserted."""
    changes = state_changes(lines, existing)
    if conn.dialect.name == "postgresql":
        stage(conn, {spec.table.name: data for spec, data in _by_spec(rows)})

    def write(spec: Write, data: list[dict[str, Any]]) -> set[str]:
        return write_rows(conn, spec, data, now=now, payload=payloads.get(spec.table.name))

    touched = write(CUSTOMERS, rows.customers)
    card_changed = clear_old_defaults(conn, changes.old_defaults, now)
    written_cards = write(CARDS, rows.cards)
    card_changed |= {rows.owner[key] for key in written_cards}
    bump_card_generation(conn, sorted(card_changed & existing.customers), now)
    touched |= card_changed
    written_subs = write(SUBSCRIPTIONS, rows.subscriptions)
    touched |= {rows.owner[key] for key in written_subs}
    touched |= apply_statuses(conn, changes.explicit_status, now)
    new_invoices = write(INVOICES, rows.invoices)
    if not full:
        _check_new_children(lines, existing, rows, written_cards | written_subs | new_invoices)
    if new_invoices:
        _new_invoice_rows(conn, rows, sorted(new_invoices))
        touched |= {rows.owner[key] for key in new_invoices}
        subs_in_dunning = sorted({rows.invoice_subscription[key] for key in new_invoices})
        move_subscriptions(conn, subs_in_dunning, SubscriptionStatus.past_due, now)
    return touched, new_invoices


def _new_invoice_rows(conn: Connection, rows: ChunkRows, new_invoices: list[str]) -> None:
    """The audit rows of the invoices just inserted, and the failed attempts each reports."""
    append_rows(conn, audit_log, AUDIT_FIELDS, [rows.audit[key] for key in new_invoices])
    attempt_rows = [a for key in new_invoices for a in rows.attempts.get(key, ())]
    append_rows(conn, payment_attempts, ATTEMPT_FIELDS, attempt_rows)


def _check_new_children(
    lines: Sequence[CustomerLine], existing: Existing, rows: ChunkRows, written: set[str]
) -> None:
    if not existing.customers:
        # Every row is a new customer's, and ``written`` holds only ids of these rows.
        if len(written) != len(rows.cards) + len(rows.subscriptions) + len(rows.invoices):
            raise StoredElsewhere()
        return
    for c in lines:
        if c.id in existing.customers:
            continue
        ids = [pm.id for pm in c.payment_methods] + [s.id for s in c.subscriptions]
        if not written.issuperset(ids + [inv.id for inv in c.invoices]):
            raise StoredElsewhere(c.id)
