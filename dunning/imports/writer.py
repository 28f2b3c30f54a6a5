"""Write one chunk of validated lines in one transaction, with multi-row upserts.

Order matters: customers, then the default-card flip (the old default is cleared before the
new one is set, because a partial unique index allows one default per customer), cards,
subscriptions, invoices (inserted once: after that the pipeline owns them), their audit rows,
and last the ``active -> past_due`` move of subscriptions that got an open invoice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, String, select, update

from dunning.imports.checks import LineError
from dunning.imports.lines import CustomerLine
from dunning.imports.rows import Existing, build_rows, ownership_errors
from dunning.imports.upsert import id_in, insert_new, insert_rows, recordset, upsert
from dunning.model import SubscriptionStatus, allowed_sources
from dunning.store.tables import audit_log, customers, invoices, payment_methods, subscriptions

log = logging.getLogger(__name__)

# Bound parameters per IN list: well under SQLite's limit of 32,766 variables.
IN_SLICE = 5000

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


def _slices(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), IN_SLICE):
        yield list(ids[start : start + IN_SLICE])


def lookup(conn: Connection, lines: Sequence[CustomerLine]) -> Existing:
    """What of these lines is already stored (ids, owners, card states)."""
    cus_ids = [c.id for c in lines]
    card_ids = [pm.id for c in lines for pm in c.payment_methods]
    sub_ids = [s.id for c in lines for s in c.subscriptions]
    inv_ids = [inv.id for c in lines for inv in c.invoices]
    found_customers: set[str] = set()
    cards: dict[str, tuple[str, str]] = {}
    subs: dict[str, tuple[str, str | None]] = {}
    invs: dict[str, str] = {}
    for part in _slices(cus_ids):
        found_customers.update(
            conn.scalars(select(customers.c.id).where(id_in(conn, customers.c.id, part)))
        )
    pm = payment_methods.c
    for part in _slices(card_ids):
        for key, owner, status in conn.execute(
            select(pm.id, pm.customer_id, pm.status).where(id_in(conn, pm.id, part))
        ):
            cards[key] = (owner, status)
    sc = subscriptions.c
    for part in _slices(sub_ids):
        for key, owner, card in conn.execute(
            select(sc.id, sc.customer_id, sc.payment_method_id).where(id_in(conn, sc.id, part))
        ):
            subs[key] = (owner, card)
    for part in _slices(inv_ids):
        for key, owner in conn.execute(
            select(invoices.c.id, invoices.c.customer_id).where(id_in(conn, invoices.c.id, part))
        ):
            invs[key] = owner
    return Existing(frozenset(found_customers), cards, subs, invs)


def write_chunk(
    conn: Connection, batch: Sequence[tuple[int, CustomerLine]], now: datetime
) -> ChunkResult:
    """Load ``(line number, customer)`` pairs; the caller owns the transaction."""
    result = ChunkResult()
    existing = lookup(conn, [c for _, c in batch])
    good: list[tuple[int, CustomerLine]] = []
    for lineno, c in batch:
        errors = ownership_errors(lineno, c, existing)
        if errors:
            result.refused.extend(errors)
        else:
            good.append((lineno, c))
    rows = build_rows([c for _, c in good], existing, now)
    touched = upsert(
        conn, customers, rows.customers, update=CUSTOMER_COLUMNS, forward_only=("last_payment_at",)
    )
    stored_defaults = {k: v for k, v in rows.defaults.items() if k in existing.customers}
    card_changed = _clear_old_defaults(conn, stored_defaults, now)
    written = upsert(
        conn,
        payment_methods,
        rows.cards,
        update=CARD_COLUMNS,
        same=("customer_id",),
        guard=payment_methods.c.status == "active",
    )
    card_changed |= {rows.owner[key] for key in written}
    _bump_card_generation(conn, sorted(card_changed & existing.customers), now)
    touched |= card_changed
    written = upsert(
        conn,
        subscriptions,
        rows.subscriptions,
        update=SUBSCRIPTION_COLUMNS,
        forward_only=("current_period_end", "last_payment_at"),
        same=("customer_id",),
    )
    touched |= {rows.owner[key] for key in written}
    touched |= _apply_statuses(conn, rows.explicit_status, now)
    new_invoices = insert_new(conn, invoices, rows.invoices)
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


def _clear_old_defaults(conn: Connection, defaults: dict[str, str], now: datetime) -> set[str]:
    """Unset the default flag of stored cards that are no longer their customer's default."""
    if not defaults:
        return set()
    pm = payment_methods.c
    stmt = update(payment_methods).where(pm.is_default, pm.status == "active")
    stmt = stmt.values(is_default=False, updated_at=now).returning(pm.customer_id)
    if conn.dialect.name == "postgresql":
        # A join: ``NOT IN`` over a parameter list is a linear scan per row on PostgreSQL.
        pairs = [{"customer_id": key, "id": card} for key, card in defaults.items()]
        new = recordset(pairs, {"customer_id": String(), "id": String()}, "new_default")
        return set(conn.scalars(stmt.where(pm.customer_id == new.c.customer_id, pm.id != new.c.id)))
    changed: set[str] = set()
    owners = sorted(defaults)
    for start in range(0, len(owners), IN_SLICE):
        part = owners[start : start + IN_SLICE]
        keep = [defaults[key] for key in part]
        changed.update(conn.scalars(stmt.where(pm.customer_id.in_(part), pm.id.not_in(keep))))
    return changed


def _bump_card_generation(conn: Connection, ids: list[str], now: datetime) -> None:
    # Links carry the generation: a card changed by an import invalidates older links too.
    for part in _slices(ids):
        conn.execute(
            update(customers)
            .where(id_in(conn, customers.c.id, part))
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
    for part in _slices(ids):
        stmt = (
            update(subscriptions)
            .where(id_in(conn, sc.id, part), sc.status.in_(sorted(allowed_sources(target))))
            .values(values)
            .returning(sc.customer_id)
        )
        touched.update(conn.scalars(stmt))
    return touched
