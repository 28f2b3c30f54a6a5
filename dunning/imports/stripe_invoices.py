"""A page of open Stripe invoices into the book: the ones already in dunning.

An open invoice of a subscription in the book whose payment has failed at least once
(``attempt_count`` >= 1) is inserted as ``dunning import`` inserts one: open, with Stripe's
failed charges as attempts, audited once, its subscription moved from active to past_due, and
its dunning continued where it stands (the policy's next retry or a stop, the customer told
once). After that the pipeline owns it: a later sync leaves a stored invoice alone. An open
invoice Stripe has not tried to charge yet is skipped (if its first charge fails, the
``invoice.payment_failed`` webhook brings it in); so is one that belongs to no subscription.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from dunning.imports.moves import move_subscriptions
from dunning.imports.rows import ATTEMPT_FIELDS, AUDIT_FIELDS, imported_attempts
from dunning.imports.staging import stage
from dunning.imports.stripe_customers import KindReport
from dunning.imports.stripe_ids import map_invoices, mapped_invoices, our_customers
from dunning.imports.upsert import append_rows, id_in, write_rows
from dunning.imports.writer import INVOICES
from dunning.model import SubscriptionStatus
from dunning.ports import Pipeline
from dunning.services.imported import continue_imported
from dunning.store.tables import (
    audit_log,
    invoices,
    payment_attempts,
    payment_methods,
    subscriptions,
)
from dunning.webhooks.events import MalformedEvent
from dunning.webhooks.records import InvoiceRecord
from dunning.webhooks.stripe_objects import invoice_record

ACTOR = "stripe-sync"


def invoice_records(objs: Sequence[Mapping[str, Any]], report: KindReport) -> list[InvoiceRecord]:
    out = []
    for obj in objs:
        try:
            rec = invoice_record(obj)
        except MalformedEvent as exc:
            report.skip(exc.reason)
            continue
        if rec.status != "open":
            report.skip(f"{rec.status}, not open")
        elif rec.subscription_ref is None:
            report.skip("not a subscription's invoice")
        elif rec.attempts < 1:
            report.skip("not charged yet")
        else:
            out.append(rec)
    return out


def invoice_row(rec: InvoiceRecord, subscription: str, now: datetime) -> dict[str, Any]:
    decline = rec.decline.decline_code if rec.decline else None
    return {"id": rec.ref, "subscription_id": subscription, "customer_id": rec.customer_ref,
            "amount": rec.amount, "currency": rec.currency, "status": "open",
            "attempt_count": rec.attempts, "first_failed_at": rec.first_failed_at,
            "next_attempt_at": None, "next_step_at": now,
            "last_decline_code": decline}  # fmt: skip


def audit_row(rec: InvoiceRecord, card: str | None, now: datetime) -> dict[str, Any]:
    decline = rec.decline
    return {"at": now, "kind": "invoice_imported", "invoice_id": rec.ref,
            "subscription_id": rec.subscription_ref, "customer_id": rec.customer_ref,
            "payment_method_id": card, "actor": ACTOR,
            "reason": decline.decline_code if decline else None,
            "message": f"synced from Stripe, open after {rec.attempts} failed attempt(s)",
            "data": {"amount": rec.amount, "currency": rec.currency, "attempts": rec.attempts,
                     "first_failed_at": rec.first_failed_at.isoformat(),
                     "decline": decline.decline_code if decline else None}}  # fmt: skip


def attempt_rows(rec: InvoiceRecord, card: tuple[str, str], now: datetime) -> list[dict[str, Any]]:
    """The charges Stripe reports as failed, as the pipeline records its own: the first when the
    invoice was finalized, the later ones (Stripe does not say when) as late as they may have
    been, ``now``, which the network limits count strictest; the last with the decline."""
    return imported_attempts(
        rec.ref, rec.customer_ref, card, (rec.amount, rec.currency), rec.attempts, rec.decline,
        (rec.first_failed_at, now), now,
    )  # fmt: skip


def _subscriptions(conn: Connection, recs: list[InvoiceRecord]) -> dict[str, tuple[str, Any]]:
    """Subscription id -> (customer, (card id, network) or None) for the invoices' subscriptions."""
    sc, pm = subscriptions.c, payment_methods.c
    wanted = sorted({r.subscription_ref for r in recs if r.subscription_ref})
    stmt = (
        select(sc.id, sc.customer_id, pm.id.label("card"), pm.network)
        .select_from(subscriptions.outerjoin(payment_methods, pm.id == sc.payment_method_id))
        .where(id_in(conn, sc.id, wanted))
    )
    return {
        row.id: (row.customer_id, (row.card, row.network) if row.card else None)
        for row in conn.execute(stmt)
    }


def write_invoices(
    conn: Connection,
    recs: list[InvoiceRecord],
    now: datetime,
    report: KindReport,
    pipeline: Pipeline,
) -> None:
    """Insert a page's new invoices in the caller's transaction and have the pipeline continue
    their dunning (:func:`~dunning.services.imported.continue_imported`); stored ones stay."""
    if not recs:
        return
    mapped = our_customers(conn, [r.customer_ref for r in recs])
    recs = [replace(r, customer_ref=mapped.get(r.customer_ref, r.customer_ref)) for r in recs]
    subs = _subscriptions(conn, recs)
    stored = mapped_invoices(conn, [r.ref for r in recs])
    rows, audit, attempts, owners = [], {}, {}, {}
    for rec in recs:
        sub = subs.get(rec.subscription_ref or "")
        if sub is None or sub[0] != rec.customer_ref:
            report.skip("its subscription is not in the book")
        elif rec.ref in stored:
            report.unchanged += 1
        elif sub[1] is None:
            report.skip("its subscription has no card")
        else:
            rows.append(invoice_row(rec, rec.subscription_ref or "", now))
            audit[rec.ref] = audit_row(rec, sub[1][0], now)
            attempts[rec.ref] = attempt_rows(rec, sub[1], now)
            owners[rec.ref] = rec.subscription_ref or ""
    if conn.dialect.name == "postgresql":
        stage(conn, {invoices.name: rows})
    new = sorted(write_rows(conn, INVOICES, rows, now=now))
    map_invoices(conn, new)  # paid through the Stripe invoice from now on
    report.inserted += len(new)
    report.unchanged += len(rows) - len(new)
    append_rows(conn, audit_log, AUDIT_FIELDS, [audit[key] for key in new])
    append_rows(conn, payment_attempts, ATTEMPT_FIELDS, [a for k in new for a in attempts[k]])
    move_subscriptions(conn, sorted({owners[k] for k in new}), SubscriptionStatus.past_due, now)
    if new:
        continue_imported(conn, pipeline, new, now)
