"""PostgreSQL through psqlODBC: ``postgresql+pyodbc://user@host:5432/db?driver=PostgreSQL+Unicode``.

SQLAlchemy has no ``postgresql+pyodbc``; ``PGDialect_pyodbc`` mixes its pyodbc
connector into the PostgreSQL dialect, so SQL is compiled as PostgreSQL and run
through pyodbc, and is registered under that name on import. The statement
timeout is the server's own ``statement_timeout`` (the server cancels the
statement: SQLSTATE 57014); read-only intent is a read-only session.

The server's timeout cannot help when the server (or the network to it) stops
answering, and psqlODBC honours neither the ODBC login nor the query timeout
attribute, so libpq's own deadlines go in through ``pqopt``: ``connect_timeout``
bounds a login, keepalives find an idle link that died, ``tcp_user_timeout``
drops a link whose bytes go unacknowledged. A request stuck on a link that stays
up but silent is answered by the gateway's own deadline.

Exports connect with ``UseDeclareFetch=1``: psqlODBC otherwise reads a whole
result into memory before the first row (an 80k-row export held ~35 MB); with it
the driver runs the query as a cursor and fetches ``Fetch`` rows at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy.connectors.pyodbc import PyODBCConnector
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.base import PGDialect

from legacy_adapters.dialects._odbc import OdbcBackend, add_option, option_present, split_server_port
from legacy_adapters.exceptions import (
    DatabaseUnavailable,
    IntegrityConflict,
    SchemaDrift,
    StatementTimeout,
    TransactionConflict,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.engine.interfaces import ConnectArgsType

    from legacy_adapters.dialects.base import EngineRole
    from legacy_adapters.mapping.model import DatabaseConfig

__all__ = ("PGDialect_pyodbc", "PostgreSQLBackend")


class PGDialect_pyodbc(PyODBCConnector, PGDialect):
    """PostgreSQL SQL, pyodbc execution."""

    supports_statement_cache = True
    pyodbc_driver_name = "PostgreSQL Unicode"

    def create_connect_args(self, url: URL) -> ConnectArgsType:
        args, kwargs = super().create_connect_args(url)
        # psqlODBC wants Port= on its own, not SQL Server's "Server=host,port".
        connection_string = split_server_port(args[0])
        # Typed booleans instead of '1'/'0' strings; psqlODBC's default dates from ODBC 2.
        connection_string = add_option(connection_string, "BoolsAsChar", "0")
        # Parameters inlined by the driver, typed by the server like literals: with server-side
        # prepare, PostgreSQL cannot type an untyped parameter in json_build_object(?, …)
        # (SQLAlchemy's reflection) or in ``? IS NULL``.
        connection_string = add_option(connection_string, "UseServerSidePrepare", "0")
        if "Trusted_Connection=Yes" in connection_string:  # SQL Server's notion; psqlODBC has none
            connection_string = connection_string.replace(";Trusted_Connection=Yes", "")
        return (connection_string, *args[1:]), kwargs

    def set_isolation_level(self, dbapi_connection: Any, level: Any) -> None:
        if level == "AUTOCOMMIT":
            dbapi_connection.autocommit = True
            return
        dbapi_connection.autocommit = False
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL {level}")
        cursor.close()
        dbapi_connection.commit()

    def _set_backslash_escapes(self, connection: Any) -> None:
        self._backslash_escapes = False  # standard_conforming_strings is on since PostgreSQL 9.1


registry.register("postgresql.pyodbc", __name__, "PGDialect_pyodbc")


class PostgreSQLBackend(OdbcBackend):
    name = "postgresql"
    SQLSTATES: ClassVar = {
        **OdbcBackend.SQLSTATES,
        "57014": StatementTimeout,  # query_canceled: statement_timeout or a cancel request
        "40P01": TransactionConflict,  # deadlock_detected
        "57P01": DatabaseUnavailable,  # admin_shutdown
        "57P02": DatabaseUnavailable,  # crash_shutdown
        "57P03": DatabaseUnavailable,  # cannot_connect_now (starting up)
        "53300": DatabaseUnavailable,  # too_many_connections
        "42P01": SchemaDrift,  # undefined_table
        "42703": SchemaDrift,  # undefined_column
        "3F000": SchemaDrift,  # invalid_schema_name
        "23505": IntegrityConflict,
        "23503": IntegrityConflict,
        "23502": IntegrityConflict,
        "23514": IntegrityConflict,
        # RAISE EXCEPTION in a procedure: the legacy logic refusing the change, not a server fault.
        "P0001": IntegrityConflict,
    }

    FETCH_ROWS: ClassVar[int] = 1000
    """Rows an export's cursor fetches per round trip: the gateway's export batch (gateway.export.BATCH_ROWS)."""

    def _connection_string(self, connection_string: str, config: DatabaseConfig, role: EngineRole = "requests") -> str:
        if not option_present(connection_string, "pqopt"):  # the user's own libpq options win
            deadline = config.request_deadline_s
            libpq = (
                # The login timeout's own value: psqlODBC passes that on as connect_timeout too, and
                # refuses the connection when the two differ. Without it here, it does not bound a login.
                f"connect_timeout={max(1, round(config.connect_timeout_s))} keepalives=1 "
                "keepalives_idle=5 keepalives_interval=2 keepalives_count=3 "
                f"tcp_user_timeout={max(1000, round(deadline * 1000))}"
            )
            connection_string = add_option(connection_string, "pqopt", f"{{{libpq}}}")
        if role == "exports":
            connection_string = add_option(connection_string, "UseDeclareFetch", "1")
            connection_string = add_option(connection_string, "Fetch", str(self.FETCH_ROWS))
        return connection_string

    def _on_connect(self, dbapi_conn: Any, config: DatabaseConfig) -> None:
        cursor = dbapi_conn.cursor()
        if config.read_only:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cursor.execute("SET application_name = 'bridgehead'")
        cursor.close()
        dbapi_conn.commit()

    def _set_timeout(self, dbapi_conn: Any, seconds: float | None) -> None:
        milliseconds = 0 if seconds is None else max(1, round(seconds * 1000))
        cursor = dbapi_conn.cursor()
        cursor.execute(f"SET statement_timeout = {milliseconds:d}")
        cursor.close()
        # Committed, or the pool's rollback-on-return would undo it.
        dbapi_conn.commit()
