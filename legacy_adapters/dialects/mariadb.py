"""MariaDB and MySQL through MariaDB Connector/ODBC: ``mysql+pyodbc://root@host:3306/db?driver=MariaDB+Unicode``.

SQLAlchemy ships ``mysql+pyodbc`` (and ``mariadb+pyodbc``); this backend adds the
statement timeout — MariaDB's ``max_statement_time`` (seconds; the server kills
the statement with error 1969), MySQL's ``max_execution_time`` (milliseconds,
SELECT only) — read-only sessions, and the error table. The driver reports most
errors as HY000 with the server's error number in the message, so native codes
come first.

The server's timeout cannot help when the server (or the network to it) stops
answering: the connection string adds the driver's own ``CONN_TIMEOUT``,
``READ_TIMEOUT`` and ``WRITE_TIMEOUT`` (a second past the statement timeout), so
a silent link fails with 2013 (lost connection) instead of hanging a worker.

Connector/ODBC before 3.1.17 reads every result whole into memory (3.1.17 added
``NO_CACHE``), so exports are read in keyset-ordered pages (``buffers_results``) of
``page_rows``, each bounded by the statement timeout.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from legacy_adapters.dialects._odbc import OdbcBackend, add_option, split_server_port
from legacy_adapters.exceptions import (
    DatabaseUnavailable,
    IntegrityConflict,
    LoginRefused,
    SchemaDrift,
    StatementTimeout,
    TransactionConflict,
)

if TYPE_CHECKING:
    from legacy_adapters.dialects.base import EngineRole
    from legacy_adapters.mapping.model import DatabaseConfig

__all__ = ("MariaDBBackend",)


class MariaDBBackend(OdbcBackend):
    name = "mysql"
    buffers_results: ClassVar[bool] = True
    # 5,000-row pages against 1,000: the server's CPU per exported row 0.8 -> 0.6 µs, ours -0.2 µs,
    # for ~4 MB more at peak (two pages of driver rows: the one handed on, the one read ahead).
    page_rows: ClassVar[int] = 5000
    NATIVE_CODES: ClassVar = {
        1045: LoginRefused,  # ER_ACCESS_DENIED_ERROR (user or password)
        1044: LoginRefused,  # ER_DBACCESS_DENIED_ERROR
        1969: StatementTimeout,  # ER_STATEMENT_TIMEOUT (max_statement_time)
        1213: TransactionConflict,  # ER_LOCK_DEADLOCK: rerun the transaction
        1205: TransactionConflict,  # ER_LOCK_WAIT_TIMEOUT
        3024: StatementTimeout,  # MySQL: max_execution_time exceeded
        1317: StatementTimeout,  # ER_QUERY_INTERRUPTED (a cancel)
        2002: DatabaseUnavailable,  # cannot connect (socket)
        2003: DatabaseUnavailable,  # cannot connect (TCP)
        2005: DatabaseUnavailable,  # unknown host
        2006: DatabaseUnavailable,  # server has gone away
        2013: DatabaseUnavailable,  # lost connection during query
        2055: DatabaseUnavailable,  # lost connection at reading
        1040: DatabaseUnavailable,  # too many connections
        1053: DatabaseUnavailable,  # server shutdown in progress
        1927: DatabaseUnavailable,  # connection was killed
        1146: SchemaDrift,  # no such table
        1054: SchemaDrift,  # unknown column
        1049: SchemaDrift,  # unknown database
        1062: IntegrityConflict,  # duplicate entry
        1451: IntegrityConflict,  # FK parent row
        1452: IntegrityConflict,  # FK child row
        1048: IntegrityConflict,  # column cannot be null
        # SIGNAL SQLSTATE '45000' in a procedure: the legacy logic refusing the change, not a server fault.
        1644: IntegrityConflict,
    }
    SQLSTATES: ClassVar = {**OdbcBackend.SQLSTATES, "70100": StatementTimeout, "45000": IntegrityConflict}

    def _connection_string(self, connection_string: str, config: DatabaseConfig, role: EngineRole = "requests") -> str:
        # SQLAlchemy writes SQL Server's "Server=host,port"; Connector/ODBC wants Port= on its own.
        connection_string = split_server_port(connection_string)
        # Client-side deadlines (whole seconds): a link that stays up but silent fails with 2013.
        # Exports run as batches bounded by the statement timeout too, so one value fits every role.
        io_seconds = str(math.ceil(config.statement_timeout_s) + 1)
        connection_string = add_option(
            connection_string, "CONN_TIMEOUT", str(max(1, math.ceil(config.connect_timeout_s)))
        )
        connection_string = add_option(connection_string, "READ_TIMEOUT", io_seconds)
        return add_option(connection_string, "WRITE_TIMEOUT", io_seconds)

    def _on_connect(self, dbapi_conn: Any, config: DatabaseConfig) -> None:
        cursor = dbapi_conn.cursor()
        self._mariadb = "mariadb" in str(dbapi_conn.getinfo(17)).lower()  # SQL_DBMS_NAME
        if config.read_only:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
        cursor.close()

    def _set_timeout(self, dbapi_conn: Any, seconds: float | None) -> None:
        cursor = dbapi_conn.cursor()
        if getattr(self, "_mariadb", True):
            cursor.execute(f"SET SESSION max_statement_time = {0 if seconds is None else seconds:.3f}")
        else:
            cursor.execute(f"SET SESSION max_execution_time = {0 if seconds is None else round(seconds * 1000)}")
        cursor.close()
