"""SQLite through Python's own sqlite3 driver: the embedded demo default.

SQLite has no statement timeout, so one is made with a progress handler that
interrupts the statement once its deadline passes; the handler is armed before
each execute and disarmed for streamed exports, which may rightly run for minutes.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from legacy_adapters.dialects.base import GUARD, pool_size
from legacy_adapters.exceptions import (
    DatabaseError,
    DatabaseUnavailable,
    IntegrityConflict,
    SchemaDrift,
    StatementTimeout,
)

if TYPE_CHECKING:
    from legacy_adapters.dialects.base import EngineRole
    from legacy_adapters.mapping.model import DatabaseConfig

__all__ = ("SQLiteBackend",)

_PROGRESS_STEPS = 10_000  # VM instructions between deadline checks: cheap, yet well under a millisecond


class _Deadline:
    """sqlite3's statement timeout: the progress handler interrupts a statement once ``due`` has passed.

    Arming is one attribute write (no lock, no timer): the check runs in SQLite's own loop.
    """

    __slots__ = ("due", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.due: float | None = None

    def arm(self, _cursor: Any) -> None:
        self.due = time.monotonic() + self.seconds

    def disarm(self) -> None:
        self.due = None

    def overdue(self) -> int:
        due = self.due
        return 1 if due is not None and time.monotonic() > due else 0


class SQLiteBackend:
    name = "sqlite"
    buffers_results: ClassVar[bool] = False  # sqlite3 steps through a result row by row
    page_rows: ClassVar[int] = 0

    def engine_options(self, config: DatabaseConfig, role: EngineRole = "requests") -> dict[str, Any]:
        return {
            "connect_args": {"check_same_thread": False, "timeout": config.connect_timeout_s},
            "pool_size": pool_size(config, role),
            "max_overflow": 0,
            "pool_timeout": config.connect_timeout_s,
            "poolclass": sa.pool.QueuePool,
        }

    def install(self, engine: sa.Engine, config: DatabaseConfig, role: EngineRole = "requests") -> None:
        timeout = config.statement_timeout_s

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, record: Any) -> None:
            deadline = _Deadline(timeout)
            dbapi_conn.set_progress_handler(deadline.overdue, _PROGRESS_STEPS)
            record.info[GUARD] = deadline
            # The driver's own implicit BEGIN cannot take the write lock up front; SQLAlchemy's
            # "begin" event below emits BEGIN itself (see the SQLAlchemy pysqlite docs).
            dbapi_conn.isolation_level = None
            if config.read_only:
                dbapi_conn.execute("PRAGMA query_only = 1")

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            # A write takes the lock at BEGIN (IMMEDIATE), so two writers queue instead of
            # deadlocking when both try to upgrade a read lock; reads stay deferred.
            write = conn.get_execution_options().get("bridgehead_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _arm(conn: sa.Connection, cursor: Any, _stmt: Any, _params: Any, context: Any, _many: bool) -> None:
            deadline = conn.connection._connection_record.info.get(GUARD)
            if deadline is not None:
                unbounded = context is not None and context.execution_options.get("no_statement_timeout")
                if unbounded:
                    deadline.disarm()
                else:
                    deadline.arm(cursor)

    def streamable(self, statement: sa.Select[Any], dialect: sa.Dialect) -> sa.Executable | str:
        return statement

    def is_disconnect(self, error: BaseException) -> bool:
        # What SQLAlchemy's pysqlite dialect calls a disconnect: the file stays, the connection closed.
        return "cannot operate on a closed database" in str(getattr(error, "orig", error)).lower()

    def classify(self, error: BaseException) -> DatabaseError:
        text = str(getattr(error, "orig", error)).lower()
        if isinstance(getattr(error, "orig", error), sqlite3.IntegrityError):
            return IntegrityConflict("the change conflicts with existing data")
        if "interrupted" in text:
            return StatementTimeout("the database did not answer in time")
        if "no such table" in text or "no such column" in text:
            return SchemaDrift("a mapped table or column is missing from the database")
        if "unable to open" in text or "locked" in text or "disk i/o" in text or "timeout" in text:
            return DatabaseUnavailable("the database is not available")
        return DatabaseError("the database could not run the query")
