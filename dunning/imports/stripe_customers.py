"""A page of Stripe customers into the book, through the importer's chunk writer.

Each customer becomes an import line (:class:`~dunning.imports.lines.CustomerLine`) with its
default card when that is a card: the same validation, the same batched upserts (COPY for new
customers on PostgreSQL), the same default-card flip and card-generation bump as
``dunning import``. A customer the book cannot take (no email address, a field the import
format refuses) is skipped and counted with the reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from dunning.imports.lines import CustomerLine
from dunning.imports.stripe_ids import map_customers, our_customers
from dunning.imports.writer import write_chunk
from dunning.webhooks.events import MalformedEvent
from dunning.webhooks.records import CustomerRecord
from dunning.webhooks.stripe_objects import customer_record, pick_locale


@dataclass
class KindReport:
    """What a sync did with one kind of object."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    pages: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped += n
        self.reasons[reason] += n

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "skipped_because": dict(sorted(self.reasons.items())),
            "pages": self.pages,
        }


def customer_line(rec: CustomerRecord, supported: tuple[str, ...]) -> CustomerLine | str:
    """The import line of a customer, or why the book cannot take it."""
    if not rec.email:
        return "no email address"
    card = rec.default_card
    cards = []
    if card is not None:
        cards.append({"id": card.ref, "gateway": "stripe", "token": card.ref,
                      "network": card.network, "last4": card.last4, "exp_month": card.exp_month,
                      "exp_year": card.exp_year, "default": True})  # fmt: skip
    locale = pick_locale(rec.preferred_locales, supported)
    line = {"id": rec.ref, "email": rec.email, "name": rec.name, "locale": locale,
            "timezone": rec.timezone, "payment_methods": cards}  # fmt: skip
    try:
        # As JSON, the way import lines are read: the same rules, the same strictness.
        return CustomerLine.model_validate_json(json.dumps(line))
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "customer"
        return f"{where}: {first.get('msg', 'invalid')}"


def customer_lines(
    objs: Sequence[Mapping[str, Any]], supported: tuple[str, ...], report: KindReport
) -> list[tuple[int, CustomerLine]]:
    """The lines of a page, numbered by position; skipped customers counted in ``report``."""
    lines = []
    for i, obj in enumerate(objs):
        try:
            line = customer_line(customer_record(obj), supported)
        except MalformedEvent as exc:
            line = exc.reason
        if isinstance(line, str):
            report.skip(line)
        else:
            lines.append((i, line))
    return lines


def write_customers(
    conn: Connection,
    lines: list[tuple[int, CustomerLine]],
    now: datetime,
    report: KindReport,
    *,
    full: bool = False,
) -> None:
    """Upsert the lines in the caller's transaction (``full``: look every id up first).

    A customer the book maps to this Stripe customer is written under our id; a new one under
    Stripe's id, mapped to it.
    """
    mapped = our_customers(conn, [line.id for _, line in lines])
    ours = [(i, line.model_copy(update={"id": mapped[line.id]}) if line.id in mapped else line)
            for i, line in lines]  # fmt: skip
    result = write_chunk(conn, ours, now, full=full)
    map_customers(conn, [line.id for _, line in lines if line.id not in mapped])
    report.inserted += len(result.inserted)
    report.updated += len(result.updated)
    report.unchanged += len(result.unchanged)
    for error in result.refused:
        report.skip(f"{error.path}: {error.message}")
