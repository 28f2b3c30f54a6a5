"""Alembic environment: the engine comes from the caller (see dunning.store.migrate)."""

from __future__ import annotations

from alembic import context

from dunning.store.tables import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # pragma: no cover - used only by the alembic CLI for autogenerate
    from config.settings import load_settings
    from dunning.store.engine import make_engine

    engine = make_engine(load_settings().database_url)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
