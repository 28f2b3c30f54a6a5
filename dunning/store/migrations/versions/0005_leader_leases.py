"""leader leases: the scheduler's election lives in the database

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 09:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dunning.store.types


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leader_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", dunning.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", dunning.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leader_leases")),
    )


def downgrade() -> None:
    op.drop_table("leader_leases")
