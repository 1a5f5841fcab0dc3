"""The state store's engine and schema: one SQLAlchemy database shared by every stateful concern.

SQLite file by default (one machine), PostgreSQL when several gateway or sync
processes share state. Each concern (idempotency keys, audit, sync cursors, …)
defines its tables on ``METADATA`` in its own module and gets the engine from
``StateDatabase``. The schema itself comes from versioned Alembic migrations
(``sync/state/migrations``), applied by ``migrate()`` under a lock, so every
process may call it at start.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import stamina

__all__ = ("METADATA", "StateDatabase")

METADATA = sa.MetaData()
"""Every state table is declared on this metadata, in the module that owns it."""


class StateDatabase:
    """An engine for the state store, with its tables created on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        options: dict[str, Any] = {"pool_pre_ping": True}
        backend = sa.make_url(url).get_backend_name()
        if backend == "sqlite":
            database = sa.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            # Writers from several threads: wait for the lock instead of failing at once.
            options["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if not database or database == ":memory:":
                options["poolclass"] = sa.pool.StaticPool
        self.engine = sa.create_engine(url, **options)
        if backend == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.is_postgresql = backend == "postgresql"

    def migrate(self) -> None:
        """Bring the store to the newest schema (see ``sync/state/migrate.py``)."""
        from sync.state.migrate import migrate

        migrate(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=30000")
        # WAL lets readers (status, DLQ list) run while a sync run or the gateway writes. It is a
        # lasting property of the file: set once, by the first process that finds it unset.
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


@stamina.retry(on=sqlite3.OperationalError, attempts=40, timeout=30.0, wait_initial=0.01, wait_max=1.0)
def _enable_wal(cursor: Any) -> None:
    # Switching a file to WAL takes an exclusive lock, and SQLite answers "database is locked" at once,
    # without waiting its busy timeout, while another connection reads it: processes starting
    # together on a new store (seen when four migrated one at once) retry for a while.
    cursor.execute("PRAGMA journal_mode=WAL")
