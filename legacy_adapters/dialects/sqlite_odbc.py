"""SQLite through the sqliteodbc driver: ``sqlite+pyodbc:///path/to/file.db`` (or ``?odbc_connect=...``).

Not for production — it exists so the whole pyodbc path (connection strings,
pyodbc type mapping, cancellation, error shapes) can be tested on any machine
with ``libsqliteodbc``. ``SQLiteDialect_pyodbc`` mixes SQLAlchemy's pyodbc
connector into the SQLite dialect. ``StepAPI=1`` with autocommit makes the
driver step through rows as they are fetched instead of buffering the whole
result. SQLite has no statement timeout: a watchdog cancels the statement
(SQLCancel -> ``sqlite3_interrupt``) when its deadline passes.

Write transactions stay in ODBC autocommit and are opened with ``BEGIN IMMEDIATE``
(as the native SQLite backend does): the driver's own transactions start with a
deferred ``BEGIN``, so concurrent writers each took a read lock, then deadlocked
upgrading it and sat out the driver's 100-second busy timeout. ``COMMIT`` and
``ROLLBACK`` are therefore statements too (``SQLEndTran`` does nothing in autocommit).
"""

from __future__ import annotations

import sqlite3
import types
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.connectors.pyodbc import PyODBCConnector
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.base import SQLiteDialect

from legacy_adapters.dialects._odbc import OdbcBackend, add_option
from legacy_adapters.exceptions import DatabaseUnavailable, IntegrityConflict, SchemaDrift, StatementTimeout

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.engine.interfaces import ConnectArgsType

    from legacy_adapters.dialects.base import EngineRole
    from legacy_adapters.mapping.model import DatabaseConfig

__all__ = ("SQLiteDialect_pyodbc", "SQLiteOdbcBackend")


class _PyodbcModule(types.ModuleType):
    """pyodbc, plus the ``sqlite_version_info`` SQLAlchemy's SQLite dialect reads off its DB-API module."""

    # sqliteodbc and Python's sqlite3 link the same system libsqlite3 on Debian.
    sqlite_version_info = sqlite3.sqlite_version_info

    def __init__(self, module: types.ModuleType) -> None:
        super().__init__(module.__name__)
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


class SQLiteDialect_pyodbc(PyODBCConnector, SQLiteDialect):
    """SQLite SQL, pyodbc execution through sqliteodbc."""

    supports_statement_cache = True
    pyodbc_driver_name = "SQLite3"

    @classmethod
    def import_dbapi(cls) -> Any:
        return _PyodbcModule(__import__("pyodbc"))

    def create_connect_args(self, url: URL) -> ConnectArgsType:
        query = dict(url.query)
        connect_args: dict[str, Any] = {"autocommit": True}
        if "autocommit" in query:
            connect_args["autocommit"] = str(query.pop("autocommit")).lower() in ("1", "true", "yes")
        if "odbc_connect" in query:
            connection_string = str(query.pop("odbc_connect"))
        else:
            driver = str(query.pop("driver", self.pyodbc_driver_name))
            connection_string = f"DRIVER={{{driver}}};Database={url.database or ''}"
            for key, value in query.items():
                connection_string += f";{key}={value}"
        connection_string = add_option(connection_string, "StepAPI", "1")
        return (connection_string,), connect_args

    def set_isolation_level(self, dbapi_connection: Any, level: Any) -> None:
        if level == "AUTOCOMMIT":
            dbapi_connection.autocommit = True
        else:
            super().set_isolation_level(dbapi_connection, level)

    def get_isolation_level(self, dbapi_connection: Any) -> Any:
        cursor = dbapi_connection.cursor()
        row = cursor.execute("PRAGMA read_uncommitted").fetchone()
        cursor.close()
        # sqliteodbc returns the pragma's value as text.
        return "READ UNCOMMITTED" if row and int(row[0]) == 1 else "SERIALIZABLE"

    def do_commit(self, dbapi_connection: Any) -> None:
        _end_transaction(dbapi_connection, "COMMIT")

    def do_rollback(self, dbapi_connection: Any) -> None:
        _end_transaction(dbapi_connection, "ROLLBACK")

    def _get_server_version_info(self, connection: Any) -> tuple[int, ...]:
        version = connection.exec_driver_sql("select sqlite_version()").scalar()
        return tuple(int(p) for p in str(version).split(".") if p.isdigit())


def _end_transaction(dbapi_connection: Any, statement: str) -> None:
    """End the transaction ``BEGIN IMMEDIATE`` opened; a connection without one has nothing to end."""
    if not dbapi_connection.autocommit:  # ?autocommit=false: the driver runs the transaction
        getattr(dbapi_connection, statement.lower())()
        return
    # SQLAlchemy hands its pool proxy here, whose ``info`` says whether ``BEGIN IMMEDIATE`` ran: a read
    # (every request but a write) has nothing to end, and a ROLLBACK the driver refuses with an error
    # was a round trip and an exception on every request.
    try:
        info = dbapi_connection.info
    except (AttributeError, NotImplementedError):  # a bare pyodbc connection, SQLAlchemy's ad-hoc proxy
        info = None
    if isinstance(info, dict) and not info.pop(_BEGAN, False):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
    except Exception as exc:
        # Every connection is rolled back when it returns to the pool, reads (never begun) too.
        if "no transaction is active" not in str(exc):
            raise
    finally:
        cursor.close()


_BEGAN = "bh_began"
"""Connection info key: this checkout ran ``BEGIN IMMEDIATE`` and has a transaction to end."""

registry.register("sqlite.pyodbc", __name__, "SQLiteDialect_pyodbc")


class SQLiteOdbcBackend(OdbcBackend):
    name = "sqlite+pyodbc"
    watchdog = True

    def streamable(self, statement: sa.Select[Any], dialect: sa.Dialect) -> sa.Executable | str:
        """The statement with its values written in as literals.

        sqliteodbc steps through a result row by row only for statements without
        parameters; with even one bound value it materialises the whole result
        first (479 MB before the first row of a 1M-row export). The values are ours
        (encoded by the field codecs) and SQLAlchemy quotes them, so literal
        rendering is safe here, and it is used only for streamed exports.
        """
        return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    PHRASES: ClassVar = (
        ("interrupted", StatementTimeout),
        ("no such table", SchemaDrift),
        ("no such column", SchemaDrift),
        ("constraint failed", IntegrityConflict),
        ("unable to open", DatabaseUnavailable),
        ("database is locked", DatabaseUnavailable),
        ("disk i/o", DatabaseUnavailable),
        *OdbcBackend.PHRASES,
    )

    def install(self, engine: sa.Engine, config: DatabaseConfig, role: EngineRole = "requests") -> None:
        super().install(engine, config, role)

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            # Reads stream in autocommit (StepAPI). A write takes the write lock up front, so
            # concurrent writers queue (up to the busy timeout) instead of deadlocking.
            write = conn.get_execution_options().get("bridgehead_write")
            if write and conn.connection.dbapi_connection.autocommit:  # type: ignore[union-attr]
                conn.connection.info[_BEGAN] = True  # before: a refused BEGIN leaves nothing to end
                conn.exec_driver_sql("BEGIN IMMEDIATE")

    def _connection_string(self, connection_string: str, config: DatabaseConfig, role: EngineRole = "requests") -> str:
        # The driver waits 100 s for a lock by default; wait as long as for a pooled connection.
        return add_option(connection_string, "Timeout", str(max(1, round(config.connect_timeout_s * 1000))))

    def _on_connect(self, dbapi_conn: Any, config: DatabaseConfig) -> None:
        if config.read_only:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA query_only = 1")
            cursor.close()
