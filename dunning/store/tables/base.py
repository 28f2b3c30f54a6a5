"""What every table shares: the metadata with its naming convention, id and currency types."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String

from dunning.store.types import UtcDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

ID = String(64)
CURRENCY_CHECK = "length(currency) = 3 AND upper(currency) = currency"


def timestamps() -> list[Column[object]]:
    return [
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    ]
