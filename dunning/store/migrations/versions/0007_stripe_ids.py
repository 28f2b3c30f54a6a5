"""stripe ids: customers.stripe_customer_id and invoices.stripe_invoice_id

Our ids and Stripe's are mapped, not assumed equal. Rows that came from Stripe webhooks before
this revision were keyed by Stripe's own ids (``cus_...``, ``in_...``): those keep them as their
Stripe ids.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stripe_customer_id", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "uq_customers_stripe_customer_id", ["stripe_customer_id"], unique=True
        )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stripe_invoice_id", sa.String(length=64), nullable=True))
        batch_op.create_index("uq_invoices_stripe_invoice_id", ["stripe_invoice_id"], unique=True)
    op.execute("UPDATE customers SET stripe_customer_id = id WHERE id LIKE 'cus\\_%' ESCAPE '\\'")
    op.execute("UPDATE invoices SET stripe_invoice_id = id WHERE id LIKE 'in\\_%' ESCAPE '\\'")


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("uq_invoices_stripe_invoice_id")
        batch_op.drop_column("stripe_invoice_id")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("uq_customers_stripe_customer_id")
        batch_op.drop_column("stripe_customer_id")
