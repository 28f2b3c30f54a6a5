"""The audit log (what happened to which invoice, and why) and the sandbox gateway's ledger."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from dunning.store.tables.base import ID, metadata
from dunning.store.types import UtcDateTime

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),  # same names as the simulation's output kinds
    Column("invoice_id", ID),
    Column("subscription_id", ID),
    Column("customer_id", ID),
    Column("payment_method_id", ID),
    Column("actor", String(64), nullable=False, server_default="system"),
    Column("reason", String(64)),
    Column("message", Text),
    Column("data", JSON, nullable=False, default=dict),
)
Index("ix_audit_log_invoice", audit_log.c.invoice_id, audit_log.c.id)
Index("ix_audit_log_at", audit_log.c.at)

# The sandbox gateway's ledger: what the test double charged, one row per idempotency key.
# Not read by the pipeline; tests and the benchmark count charges from it.
sandbox_ledger = Table(
    "sandbox_ledger",
    metadata,
    Column("idempotency_key", String(128), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("token", String(255), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("initiator", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("charge_id", String(64), nullable=False),
    Column("decline_code", String(64)),
    Column("network_code", String(8)),
    Column("advice_code", String(32)),
    Column("network_advice_code", String(4)),
    Column("at", UtcDateTime(), nullable=False),
)
