"""Alembic environment: migrate the connection ``sync.state.migrate`` passes in, never a URL of its own."""

from __future__ import annotations

from alembic import context

from sync.state.store import METADATA
from sync.state.tables import STATE_TABLE_MODULES  # noqa: F401  (declares every table on METADATA)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=METADATA,
    # SQLite alters a column by copying its table; PostgreSQL alters it in place.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
