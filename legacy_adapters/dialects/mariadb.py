"""MariaDB and MySQL through MariaDB Connector/ODBC: ``mysql+pyodbc://root@host:3306/db?driver=MariaDB+Unicode``.

SQLAlchemy ships ``mysql+pyodbc`` (and ``mariadb+pyodbc``); this backend adds the
statement timeout — MariaDB's ``max_statement_time`` (seconds; the server kills
the statement with error 1969), MySQL's ``max_execution_time`` (milliseconds,
SELECT only) — read-only sessions, and the error table. The driver reports most
errors as HY000 with the server's error number in the message, so native codes
come first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from legacy_adapters.dialects._odbc import OdbcBackend, split_server_port
from legacy_adapters.exceptions import (
    DatabaseUnavailable,
    IntegrityConflict,
    SchemaDrift,
    StatementTimeout,
    TransactionConflict,
)

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import DatabaseConfig

__all__ = ("MariaDBBackend",)


class MariaDBBackend(OdbcBackend):
    name = "mysql"
    NATIVE_CODES: ClassVar = {
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

    def _connection_string(self, connection_string: str, config: DatabaseConfig) -> str:
        # SQLAlchemy writes SQL Server's "Server=host,port"; Connector/ODBC wants Port= on its own.
        return split_server_port(connection_string)

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
