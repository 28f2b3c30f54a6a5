"""failed events index: `dunning status` counts the webhook events that failed for good

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 14:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_events_failed",
            ["processed_at"],
            unique=False,
            sqlite_where=sa.text("status = 'failed'"),
            postgresql_where=sa.text("status = 'failed'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_webhook_events_failed",
            sqlite_where=sa.text("status = 'failed'"),
            postgresql_where=sa.text("status = 'failed'"),
        )
