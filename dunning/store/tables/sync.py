"""Where a sync from a gateway's account stands: one cursor per kind of object.

``dunning sync stripe`` pages through the account's customers, subscriptions and open invoices;
after each page it stores the id of the page's last object here, in the same transaction as the
page's rows. A run that stops half-way (a crash, a network failure) continues after that object
the next time; a kind whose every page is stored has ``finished_at`` set.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, PrimaryKeyConstraint, String, Table

from dunning.store.tables.base import ID, metadata
from dunning.store.types import UtcDateTime

sync_cursors = Table(
    "sync_cursors",
    metadata,
    Column("source", String(16), nullable=False),  # "stripe"
    Column("kind", String(32), nullable=False),  # customers | subscriptions | invoices
    Column("after_id", ID),  # the last object stored; NULL: start from the first page
    Column("pages", Integer, nullable=False, server_default="0"),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    PrimaryKeyConstraint("source", "kind"),
)
