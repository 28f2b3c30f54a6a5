"""The book: customers, their cards, subscriptions, invoices and every charge attempt.

Only gateway tokens, brand, last4 and expiry of a card are stored: there is no column a card
number or CVC could go into. Constraints carry the invariants: one attempt per idempotency key,
one default card per customer, amounts in minor units that cannot go negative, ISO 4217
currency codes.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from dunning.store.tables.base import CURRENCY_CHECK, ID, metadata, timestamps
from dunning.store.types import UtcDateTime

customers = Table(
    "customers",
    metadata,
    Column("id", ID, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False, server_default=""),
    Column("locale", String(16), nullable=False, server_default="en"),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("billing_emails", JSON, nullable=False, default=list),
    # Bumped on every card change: links carry it, so a change invalidates older links.
    Column("card_generation", Integer, nullable=False, server_default="0"),
    Column("last_payment_at", UtcDateTime()),
    # The customer at Stripe (``cus_...``); NULL when Stripe does not know them.
    Column("stripe_customer_id", String(64)),
    # An operator's hold on the whole customer: no charge is taken, no reminder step runs.
    Column("dunning_paused", Boolean, nullable=False, server_default=text("false")),
    *timestamps(),
)
Index("ix_customers_last_payment_at", customers.c.last_payment_at)
Index("uq_customers_stripe_customer_id", customers.c.stripe_customer_id, unique=True)
Index(  # the producers' "customer not paused" check probes this, not the whole customer table
    "ix_customers_dunning_paused",
    customers.c.id,
    sqlite_where=text("dunning_paused IS true"),
    postgresql_where=text("dunning_paused IS true"),
)

payment_methods = Table(
    "payment_methods",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("gateway", String(16), nullable=False),
    Column("token", String(255)),  # NULL once purged
    Column("network", String(16), nullable=False, server_default="unknown"),
    Column("last4", String(4), nullable=False),
    Column("exp_month", Integer, nullable=False),
    Column("exp_year", Integer, nullable=False),
    Column("is_default", Boolean, nullable=False, server_default=text("false")),
    Column("status", String(16), nullable=False, server_default="active"),
    # Set when a decline says this credential must not be charged again until it changes.
    Column("blocked_reason", String(64)),
    *timestamps(),
    CheckConstraint("exp_month BETWEEN 1 AND 12", name="exp_month"),
    CheckConstraint("exp_year BETWEEN 2000 AND 2100", name="exp_year"),
    CheckConstraint("length(last4) = 4", name="last4"),
    CheckConstraint("status IN ('active', 'removed', 'purged')", name="status"),
)
Index("ix_payment_methods_customer_id", payment_methods.c.customer_id)
Index(
    "uq_payment_methods_one_default",
    payment_methods.c.customer_id,
    unique=True,
    sqlite_where=text("is_default AND status = 'active'"),
    postgresql_where=text("is_default AND status = 'active'"),
)
Index(
    "ix_payment_methods_active_expiry",
    payment_methods.c.exp_year,
    payment_methods.c.exp_month,
    sqlite_where=text("status = 'active'"),
    postgresql_where=text("status = 'active'"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("plan", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("interval", String(8), nullable=False, server_default="month"),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("payment_method_id", ID, ForeignKey("payment_methods.id")),
    Column("current_period_end", UtcDateTime()),
    Column("last_payment_at", UtcDateTime()),
    Column("suspended_at", UtcDateTime()),
    Column("cancelled_at", UtcDateTime()),
    *timestamps(),
    CheckConstraint("amount >= 0", name="amount"),
    CheckConstraint(CURRENCY_CHECK, name="currency"),
    CheckConstraint("interval IN ('month', 'year')", name="interval"),
    CheckConstraint("status IN ('active', 'past_due', 'suspended', 'cancelled')", name="status"),
)
Index("ix_subscriptions_customer_id", subscriptions.c.customer_id)
Index(
    "ix_subscriptions_in_dunning",
    subscriptions.c.status,
    sqlite_where=text("status IN ('past_due', 'suspended')"),
    postgresql_where=text("status IN ('past_due', 'suspended')"),
)
Index("ix_subscriptions_payment_method_id", subscriptions.c.payment_method_id)

invoices = Table(
    "invoices",
    metadata,
    Column("id", ID, primary_key=True),
    Column("subscription_id", ID, ForeignKey("subscriptions.id"), nullable=False),
    Column("customer_id", ID, ForeignKey("customers.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("attempt_count", Integer, nullable=False, server_default="0"),
    Column("first_failed_at", UtcDateTime()),
    Column("next_attempt_at", UtcDateTime()),  # NULL: no charge scheduled
    Column("next_attempt_reason", String(64)),  # the policy's reason for that attempt
    Column("retry_payment_method_id", ID),  # the card the policy chose for it (a backup card)
    Column("next_step_at", UtcDateTime()),  # NULL: no reminder/final notice/suspension due
    Column("steps_done", Integer, nullable=False, server_default="0"),
    Column("last_decline_code", String(64)),
    Column("last_decline_class", String(32)),
    Column("stop_reason", String(64)),  # set when retries stop for good
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("paid_at", UtcDateTime()),
    # Claims: a producer sets claimed_until when it enqueues; a lost message is found again
    # once the lease runs out.
    Column("retry_claimed_until", UtcDateTime()),
    Column("step_claimed_until", UtcDateTime()),
    # The Stripe Billing invoice this is (``in_...``): charges pay through it. NULL otherwise.
    Column("stripe_invoice_id", String(64)),
    *timestamps(),
    CheckConstraint("amount >= 0", name="amount"),
    CheckConstraint(CURRENCY_CHECK, name="currency"),
    CheckConstraint("attempt_count >= 0", name="attempt_count"),
    CheckConstraint("status IN ('open', 'paid', 'uncollectible', 'void')", name="status"),
)
Index(
    "ix_invoices_due_retry",
    invoices.c.next_attempt_at,
    sqlite_where=text("status = 'open' AND next_attempt_at IS NOT NULL"),
    postgresql_where=text("status = 'open' AND next_attempt_at IS NOT NULL"),
)
Index(
    "ix_invoices_due_step",
    invoices.c.next_step_at,
    sqlite_where=text("status = 'open' AND next_step_at IS NOT NULL"),
    postgresql_where=text("status = 'open' AND next_step_at IS NOT NULL"),
)
Index(
    "ix_invoices_open_created",
    invoices.c.created_at,
    sqlite_where=text("status = 'open'"),
    postgresql_where=text("status = 'open'"),
)
Index(
    "ix_invoices_recovered_paid_at",
    invoices.c.paid_at,
    sqlite_where=text("first_failed_at IS NOT NULL"),
    postgresql_where=text("first_failed_at IS NOT NULL"),
)
Index("ix_invoices_subscription_id", invoices.c.subscription_id)
Index("uq_invoices_stripe_invoice_id", invoices.c.stripe_invoice_id, unique=True)
Index("ix_invoices_customer_id", invoices.c.customer_id)

payment_attempts = Table(
    "payment_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(128), nullable=False),
    Column("invoice_id", ID, ForeignKey("invoices.id"), nullable=False),
    Column("attempt_no", Integer, nullable=False),
    Column("customer_id", ID, nullable=False),
    Column("payment_method_id", ID, nullable=False),
    Column("network", String(16), nullable=False, server_default="unknown"),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("initiator", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("decline_code", String(64)),
    Column("network_code", String(8)),
    Column("advice_code", String(32)),
    Column("network_advice_code", String(4)),  # Mastercard MAC
    Column("decline_class", String(32)),
    Column("reason", String(64)),  # the policy's reason for making this attempt
    Column("gateway_charge_id", String(128)),
    Column("error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime()),
    UniqueConstraint("idempotency_key", name="uq_payment_attempts_idempotency_key"),
    CheckConstraint("amount >= 0", name="amount"),
    CheckConstraint(CURRENCY_CHECK, name="currency"),
    CheckConstraint("initiator IN ('merchant', 'customer')", name="initiator"),
    CheckConstraint(
        "status IN ('pending', 'succeeded', 'declined', 'unknown', 'not_charged')",
        name="status",
    ),
)
Index(
    "ix_payment_attempts_card_time",
    payment_attempts.c.payment_method_id,
    payment_attempts.c.created_at,
)
Index("ix_payment_attempts_invoice", payment_attempts.c.invoice_id)
Index(
    "ix_payment_attempts_unresolved",
    payment_attempts.c.created_at,
    sqlite_where=text("status IN ('pending', 'unknown')"),
    postgresql_where=text("status IN ('pending', 'unknown')"),
)

# Money collected that was not owed: a charge that succeeded on an invoice already paid (by
# another charge or elsewhere) or no longer owed (void). Never dropped: it waits here, counted
# and shown to operators, until someone refunds it and says so.
overpayments = Table(
    "overpayments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invoice_id", ID, ForeignKey("invoices.id"), nullable=False),
    Column("customer_id", ID, nullable=False),
    Column("attempt_key", String(128)),  # the charge that collected it
    Column("gateway_charge_id", String(128)),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(32), nullable=False),  # paid_twice | not_owed
    Column("invoice_status", String(16), nullable=False),  # what the invoice was when it came
    Column("status", String(16), nullable=False, server_default="refund_due"),
    Column("found_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime()),
    Column("resolved_by", String(64)),
    Column("note", Text),
    UniqueConstraint("attempt_key", name="uq_overpayments_attempt_key"),
    CheckConstraint("amount >= 0", name="amount"),
    CheckConstraint(CURRENCY_CHECK, name="currency"),
    CheckConstraint("status IN ('refund_due', 'refunded')", name="status"),
)
Index(
    "ix_overpayments_due",
    overpayments.c.found_at,
    sqlite_where=text("status = 'refund_due'"),
    postgresql_where=text("status = 'refund_due'"),
)
