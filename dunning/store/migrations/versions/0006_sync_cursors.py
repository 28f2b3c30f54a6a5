"""sync cursors: where a sync from a gateway's account stands

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 13:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dunning.store.types


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_cursors",
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("after_id", sa.String(length=64), nullable=True),
        sa.Column("pages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("started_at", dunning.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dunning.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", dunning.store.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("source", "kind", name=op.f("pk_sync_cursors")),
    )


def downgrade() -> None:
    op.drop_table("sync_cursors")
