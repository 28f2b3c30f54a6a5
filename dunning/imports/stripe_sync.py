"""``sync_stripe``: backfill the book from a merchant's Stripe account, page by page.

Customers first (with their default cards), then subscriptions (every status), then open
invoices: each kind needs the one before it in the book. Each page of up to 100 objects is one
transaction that also moves the kind's cursor (:mod:`dunning.imports.sync_cursors`), so a run
that stops half-way continues after the last stored page, and a page stored twice changes
nothing (the writes are the importer's idempotent upserts). The next page is fetched while
the current one is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from dunning.gateways.stripe_read import PAGE_LIMIT, Page
from dunning.imports import sync_cursors
from dunning.imports.stripe_customers import KindReport, customer_lines, write_customers
from dunning.imports.stripe_invoices import invoice_records, write_invoices
from dunning.imports.stripe_subscriptions import subscription_records, write_subscriptions
from dunning.imports.writer import StoredElsewhere
from dunning.ports import Pipeline
from dunning.store.uow import transaction

log = logging.getLogger(__name__)

SOURCE = "stripe"
KINDS = ("customers", "subscriptions", "invoices")
# kind -> (list path, filters, expansions)
LISTS: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
    "customers": ("/v1/customers", {}, ("data.invoice_settings.default_payment_method",)),
    "subscriptions": ("/v1/subscriptions", {"status": "all"}, ("data.default_payment_method",)),
    "invoices": ("/v1/invoices", {"status": "open"}, ()),
}

# Called after each stored page with the kind and what the sync did with it so far.
SyncProgress = Callable[[str, KindReport], None]


class PageSource(Protocol):
    def page(
        self,
        path: str,
        *,
        after: str | None = None,
        params: Mapping[str, str] | None = None,
        expand: tuple[str, ...] = (),
        limit: int = PAGE_LIMIT,
    ) -> Page: ...


@dataclass
class SyncReport:
    """What a sync did, by kind; ``resumed`` when it continued an unfinished run."""

    resumed: bool = False
    kinds: dict[str, KindReport] = field(default_factory=lambda: {k: KindReport() for k in KINDS})

    def as_dict(self) -> dict[str, Any]:
        return {"resumed": self.resumed, **{k: r.as_dict() for k, r in self.kinds.items()}}


def sync_stripe(
    pipeline: Pipeline,
    source: PageSource,
    *,
    now: datetime,
    locales: tuple[str, ...],
    restart: bool = False,
    progress: SyncProgress | None = None,
    limit: int = PAGE_LIMIT,
) -> SyncReport:
    """Store the account's customers, subscriptions and open invoices; resume a stopped run.

    ``locales`` are the languages with email templates; ``restart`` ignores stored cursors.
    Raises what the source raises (``GatewayUnavailable``, ``StripeReadError``): the pages
    stored so far stay stored, and running again continues from there.
    """
    if now.tzinfo is None:
        raise ValueError("sync_stripe needs a timezone-aware now")
    engine = pipeline.engine
    cursors, resumed = sync_cursors.start(engine, SOURCE, KINDS, now, restart=restart)
    report = SyncReport(resumed=resumed)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stripe-read") as pool:
        for kind in KINDS:
            cursor = cursors[kind]
            if cursor.finished:
                continue
            path, params, expand = LISTS[kind]

            def fetch(after: str | None, path: str = path, params: dict[str, str] = params,
                      expand: tuple[str, ...] = expand) -> Page:  # fmt: skip
                return source.page(path, after=after, params=params, expand=expand, limit=limit)

            _sync_kind(pipeline, pool, fetch, kind, cursor.after_id, now, locales, report, progress)
    return report


def _sync_kind(
    pipeline: Pipeline,
    pool: ThreadPoolExecutor,
    fetch: Callable[[str | None], Page],
    kind: str,
    after: str | None,
    now: datetime,
    locales: tuple[str, ...],
    report: SyncReport,
    progress: SyncProgress | None,
) -> None:
    kind_report = report.kinds[kind]
    pending: Future[Page] = pool.submit(fetch, after)
    while True:
        page = pending.result()
        last = page.last_id
        more = page.has_more and last is not None
        if more:
            pending = pool.submit(fetch, last)  # read the next page while this one is written
        _store(pipeline, kind, page, now, locales, kind_report, finished=not more)
        log.debug("stripe sync: %s page %d stored", kind, kind_report.pages)
        if progress is not None:
            progress(kind, kind_report)
        if not more:
            return


def _store(
    pipeline: Pipeline,
    kind: str,
    page: Page,
    now: datetime,
    locales: tuple[str, ...],
    report: KindReport,
    *,
    finished: bool,
) -> None:
    """Write one page and move the cursor past it, in one transaction."""
    report.read += len(page.data)
    report.pages += 1
    if kind == "customers":
        lines = customer_lines(page.data, locales, report)

        def write(conn: Connection, full: bool) -> None:
            write_customers(conn, lines, now, report, full=full)

    elif kind == "subscriptions":
        subs = subscription_records(page.data, report)

        def write(conn: Connection, full: bool) -> None:
            write_subscriptions(conn, subs, now, report)

    else:
        open_invoices = invoice_records(page.data, report)

        def write(conn: Connection, full: bool) -> None:
            write_invoices(conn, open_invoices, now, report, pipeline)

    for full in (False, True):
        try:
            with transaction(pipeline.engine) as conn:
                write(conn, full)
                sync_cursors.advance(conn, SOURCE, kind, page.last_id, now, finished=finished)
            return
        except StoredElsewhere:
            # A child id of a new customer is stored under another one: look every id up.
            if full:
                raise
