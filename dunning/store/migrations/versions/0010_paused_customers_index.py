"""paused customers index: the producers skip paused customers' invoices without probing
every customer row

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 19:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customers_dunning_paused",
            ["id"],
            unique=False,
            sqlite_where=sa.text("dunning_paused IS true"),
            postgresql_where=sa.text("dunning_paused IS true"),
        )


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_customers_dunning_paused",
            sqlite_where=sa.text("dunning_paused IS true"),
            postgresql_where=sa.text("dunning_paused IS true"),
        )
