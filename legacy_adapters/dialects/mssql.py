"""SQL Server through pyodbc (``mssql+pyodbc``): Microsoft ODBC Driver 17/18 or FreeTDS.

URLs, with connection-string options passed through as query keys::

    mssql+pyodbc://user:pw@host:1433/db?driver=ODBC+Driver+18+for+SQL+Server&TrustServerCertificate=yes
    mssql+pyodbc://user:pw@host:1433/db?driver=ODBC+Driver+18+for+SQL+Server&Encrypt=no
    mssql+pyodbc://user:pw@host/db?driver=FreeTDS&TDS_Version=7.4&Port=1433&ClientCharset=UTF-8
    mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BODBC+Driver+18...   (a whole ODBC string)

The statement timeout is pyodbc's ``connection.timeout`` (SQL_ATTR_QUERY_TIMEOUT on
each new statement): when it fires the driver sends an attention, the server
cancels the batch, and the error is ``HYT00``. It is lifted for streamed
exports and restored when the connection returns to the pool. ``read_only``
adds ``ApplicationIntent=ReadOnly`` (an Availability Group's readable secondary).
DATETIMEOFFSET, which pyodbc cannot decode, gets an output converter.
"""

from __future__ import annotations

import datetime as dt
import struct
from typing import TYPE_CHECKING, Any, ClassVar

from legacy_adapters.dialects._odbc import OdbcBackend, add_option, native_code, option_present
from legacy_adapters.exceptions import (
    DatabaseError,
    DatabaseUnavailable,
    IntegrityConflict,
    SchemaDrift,
    TransactionConflict,
)

if TYPE_CHECKING:
    from legacy_adapters.dialects.base import EngineRole
    from legacy_adapters.mapping.model import DatabaseConfig

__all__ = ("SQL_DATETIMEOFFSET", "MSSQLBackend", "decode_datetimeoffset")

SQL_DATETIMEOFFSET = -155


def decode_datetimeoffset(raw: bytes) -> dt.datetime:
    """SQL Server's DATETIMEOFFSET bytes (SQL_SS_TIMESTAMPOFFSET_STRUCT) -> an aware datetime."""
    year, month, day, hour, minute, second, nanos, off_h, off_m = struct.unpack("<6hI2h", raw)
    zone = dt.timezone(dt.timedelta(hours=off_h, minutes=off_m))
    return dt.datetime(year, month, day, hour, minute, second, nanos // 1000, tzinfo=zone)


class MSSQLBackend(OdbcBackend):
    name = "mssql"
    SQLSTATES: ClassVar = {
        **OdbcBackend.SQLSTATES,
        "40001": TransactionConflict,  # deadlock victim (1205): rerun the transaction
        "42S02": SchemaDrift,  # invalid object name (208)
        "42S22": SchemaDrift,  # invalid column name (207)
        "23000": IntegrityConflict,  # 2627 unique, 2601 duplicate key, 547 FK
    }
    NATIVE_CODES: ClassVar = {
        1205: TransactionConflict,  # deadlock victim
        208: SchemaDrift,
        207: SchemaDrift,
        2627: IntegrityConflict,
        2601: IntegrityConflict,
        547: IntegrityConflict,
        4060: DatabaseUnavailable,  # cannot open database (restoring, offline)
        40613: DatabaseUnavailable,  # Azure SQL: database not currently available
        976: DatabaseUnavailable,  # AG secondary not readable
        983: DatabaseUnavailable,  # AG database role not resolved
    }

    def _kind(self, error: BaseException) -> type[DatabaseError]:
        code = native_code(error)
        # THROW / RAISERROR with a user message number (>= 50000) in a procedure: the legacy logic
        # refusing the change (409), not a server fault.
        if code is not None and code >= 50000:
            return IntegrityConflict
        return super()._kind(error)

    def _connection_string(self, connection_string: str, config: DatabaseConfig, role: EngineRole = "requests") -> str:
        if config.read_only:
            connection_string = add_option(connection_string, "ApplicationIntent", "ReadOnly")
        if "freetds" in connection_string.lower() and not option_present(connection_string, "TDS_Version"):
            connection_string = add_option(connection_string, "TDS_Version", "7.4")
        return connection_string

    def _on_connect(self, dbapi_conn: Any, config: DatabaseConfig) -> None:
        dbapi_conn.add_output_converter(SQL_DATETIMEOFFSET, decode_datetimeoffset)

    def _set_timeout(self, dbapi_conn: Any, seconds: float | None) -> None:
        # Whole seconds; 0 means none. Applies to statements created from now on.
        dbapi_conn.timeout = 0 if seconds is None else max(1, round(seconds))
