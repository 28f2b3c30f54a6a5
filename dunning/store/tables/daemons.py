"""What the daemons coordinate through: the leases that elect one active scheduler."""

from __future__ import annotations

from sqlalchemy import Column, String, Table

from dunning.store.tables.base import metadata
from dunning.store.types import UtcDateTime

# One row per elected role ("scheduler"): who holds it and until when. The holder renews
# ``expires_at`` while it runs; anyone may take a row whose lease has run out. Times are the
# database's own clock on PostgreSQL, so schedulers on hosts with skewed clocks agree.
leader_leases = Table(
    "leader_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("acquired_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
