"""The schema, one module per area; every table is importable from here.

- :mod:`.book`: customers, payment_methods, subscriptions, invoices, payment_attempts,
  overpayments
- :mod:`.messages`: notifications (the email outbox), webhook_events, webhook_endpoints,
  outbound_events
- :mod:`.audit`: audit_log, sandbox_ledger
- :mod:`.daemons`: leader_leases (the scheduler's election)
- :mod:`.sync`: sync_cursors (where a sync from a gateway's account stands)
"""

from dunning.store.tables.audit import audit_log, sandbox_ledger
from dunning.store.tables.base import CURRENCY_CHECK, ID, NAMING, metadata
from dunning.store.tables.book import (
    customers,
    invoices,
    overpayments,
    payment_attempts,
    payment_methods,
    subscriptions,
)
from dunning.store.tables.daemons import leader_leases
from dunning.store.tables.messages import (
    notifications,
    outbound_events,
    webhook_endpoints,
    webhook_events,
)
from dunning.store.tables.sync import sync_cursors

__all__ = [
    "CURRENCY_CHECK",
    "ID",
    "NAMING",
    "audit_log",
    "customers",
    "invoices",
    "leader_leases",
    "metadata",
    "notifications",
    "outbound_events",
    "overpayments",
    "payment_attempts",
    "payment_methods",
    "sandbox_ledger",
    "subscriptions",
    "sync_cursors",
    "webhook_endpoints",
    "webhook_events",
]
