"""Backends without a server: error classification tables, connection strings, SQL Server compilation.

These run everywhere (no driver, no database): pyodbc errors are imitated by
their shape — ``args == (sqlstate, message)``, the message ending in
``(native) (SQLExecDirectW)`` — which is all ``classify`` reads.
"""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import pytest
import sqlalchemy as sa
from db_backends import JWT_SECRET
from sqlalchemy.dialects import mssql

from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.dialects import get_backend
from legacy_adapters.dialects._odbc import native_code, split_server_port, sqlstate
from legacy_adapters.dialects.mssql import decode_datetimeoffset
from legacy_adapters.dialects.postgresql import PGDialect_pyodbc
from legacy_adapters.dialects.sqlite_odbc import SQLiteDialect_pyodbc
from legacy_adapters.exceptions import (
    DatabaseError,
    DatabaseUnavailable,
    IntegrityConflict,
    SchemaDrift,
    StatementTimeout,
    TransactionConflict,
    ValueRefused,
)
from legacy_adapters.mapping import load_mapping
from legacy_adapters.mapping.model import DatabaseConfig
from legacy_adapters.query.builder import build_select, order_for, selected_columns
from legacy_adapters.query.keyset import Keyset
from legacy_adapters.query.resource import bind_version


class FakeOdbcError(Exception):
    """The shape of a pyodbc.Error."""


def odbc_error(state: str, message: str, native: int | None = None) -> FakeOdbcError:
    tail = f" ({native}) (SQLExecDirectW)" if native is not None else " (SQLExecDirectW)"
    return FakeOdbcError(state, f"[{state}] [driver]{message}{tail}")


MSSQL = [
    ("08001", "TCP Provider: Error code 0x2749", 10061, DatabaseUnavailable),
    ("08S01", "Communication link failure", 10054, DatabaseUnavailable),
    ("08003", "Connection not open", None, DatabaseUnavailable),
    ("HYT00", "Query timeout expired", 0, StatementTimeout),
    ("HYT01", "Connection timeout expired", 0, DatabaseUnavailable),
    ("40001", "Transaction (Process ID 52) was deadlocked", 1205, TransactionConflict),
    ("23000", "Violation of PRIMARY KEY constraint", 2627, IntegrityConflict),
    ("23000", "Cannot insert duplicate key row", 2601, IntegrityConflict),
    ("23000", "The INSERT statement conflicted with the FOREIGN KEY", 547, IntegrityConflict),
    ("42S02", "Invalid object name 'dbo.JOBMAST'.", 208, SchemaDrift),
    ("42S22", "Invalid column name 'JSTAT'.", 207, SchemaDrift),
    ("42000", "Cannot open database requested by the login", 4060, DatabaseUnavailable),
    ("22001", "String or binary data would be truncated", 8152, ValueRefused),
    ("22003", "Arithmetic overflow error converting expression to data type int.", 8115, ValueRefused),
    ("42000", "Incorrect syntax near 'FROM'", 102, DatabaseError),
    ("42000", "JOBMAST has an incomplete routing", 50001, IntegrityConflict),  # THROW in a procedure
    ("42000", "Release refused", 50000, IntegrityConflict),  # RAISERROR('…', 16, 1)
]
POSTGRESQL = [
    ("08001", 'connection to server at "127.0.0.1", port 5432 failed: Connection refused', 101, DatabaseUnavailable),
    ("57014", "ERROR: canceling statement due to statement timeout", 1, StatementTimeout),
    ("57P01", "FATAL: terminating connection due to administrator command", 7, DatabaseUnavailable),
    ("42P01", 'ERROR: relation "JOBMAST" does not exist', 1, SchemaDrift),
    ("42703", 'ERROR: column "delflg" does not exist', 1, SchemaDrift),
    ("23505", "ERROR: duplicate key value violates unique constraint", 1, IntegrityConflict),
    ("HY000", "server closed the connection unexpectedly", 35, DatabaseUnavailable),
    ("42601", "ERROR: syntax error at or near", 1, DatabaseError),
    ("P0001", "ERROR: JOBMAST J0001 has an incomplete routing", 1, IntegrityConflict),  # RAISE EXCEPTION
    ("40P01", "ERROR: deadlock detected", 1, TransactionConflict),
    ("22003", 'ERROR: value "2147483648" is out of range for type integer', 1, ValueRefused),  # an INT key
    ("22021", 'ERROR: invalid byte sequence for encoding "UTF8": 0x00', 1, ValueRefused),
    ("40001", "ERROR: could not serialize access due to concurrent update", 1, TransactionConflict),
]
MARIADB = [
    ("HY000", "Can't connect to server on '127.0.0.1' (115)", 2002, DatabaseUnavailable),
    ("HY000", "Lost connection to server during query", 2013, DatabaseUnavailable),
    ("HY000", "Server has gone away", 2006, DatabaseUnavailable),
    ("HY018", "Query execution was interrupted (max_statement_time exceeded)", 1969, StatementTimeout),
    ("HY018", "Query execution was interrupted", 1317, StatementTimeout),
    ("42S02", "Table 'test.JOBMAST' doesn't exist", 1146, SchemaDrift),
    ("42S22", "Unknown column 'X' in 'SELECT'", 1054, SchemaDrift),
    ("23000", "Duplicate entry '1' for key 'u'", 1062, IntegrityConflict),
    ("22003", "Out of range value for column 'QTY' at row 1", 1264, ValueRefused),
    ("42000", "You have an error in your SQL syntax", 1064, DatabaseError),
    ("45000", "JOBMAST has an incomplete routing", 1644, IntegrityConflict),  # SIGNAL SQLSTATE '45000'
    ("40001", "Deadlock found when trying to get lock; try restarting transaction", 1213, TransactionConflict),
]
SQLITE_ODBC = [
    ("HY000", "[SQLite]interrupted (9)", 9, StatementTimeout),
    ("HY000", "[SQLite]no such table: JOBMAST (1)", 1, SchemaDrift),
    ("HY000", "[SQLite]no such column: X (1)", 1, SchemaDrift),
    ("HY000", "[SQLite]UNIQUE constraint failed: T.A (19)", 19, IntegrityConflict),
    ("HY000", "[SQLite]database is locked (5)", 5, DatabaseUnavailable),
    ("HY000", '[SQLite]near "FORM": syntax error (1)', 1, DatabaseError),
]
URLS = {
    "mssql": "mssql+pyodbc://u:p@db.example/legacy?driver=ODBC+Driver+18+for+SQL+Server",
    "postgresql": "postgresql+pyodbc://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pyodbc://root@127.0.0.1:3306/test?driver=MariaDB+Unicode",
    "sqlite-odbc": "sqlite+pyodbc:///x.db",
}


@pytest.mark.parametrize(
    ("url", "state", "message", "native", "expected"),
    [
        *[(URLS["mssql"], *row) for row in MSSQL],
        *[(URLS["postgresql"], *row) for row in POSTGRESQL],
        *[(URLS["mariadb"], *row) for row in MARIADB],
        *[(URLS["sqlite-odbc"], *row) for row in SQLITE_ODBC],
    ],
)
def test_classify(url: str, state: str, message: str, native: int | None, expected: type) -> None:
    error = odbc_error(state, message, native)
    classified = get_backend(url).classify(sa.exc.DBAPIError("SELECT …", None, error))  # type: ignore[arg-type]
    assert type(classified) is expected
    assert message not in str(classified), "driver text must never reach API users"


def test_disconnect_decision() -> None:
    backend = get_backend(URLS["mssql"])
    assert backend.is_disconnect(odbc_error("08S01", "Communication link failure", 10054))  # type: ignore[attr-defined]
    # A timeout or a deadlock leaves the connection usable: the pool is not thrown away.
    assert not backend.is_disconnect(odbc_error("HYT00", "Query timeout expired", 0))  # type: ignore[attr-defined]
    assert not backend.is_disconnect(odbc_error("40001", "deadlocked", 1205))  # type: ignore[attr-defined]


def test_sqlstate_and_native_code() -> None:
    error = odbc_error("42S02", "Invalid object name 'X'.", 208)
    assert sqlstate(error) == "42S02"
    assert native_code(error) == 208
    assert sqlstate(Exception("no state")) == ""


def test_postgresql_connection_string() -> None:
    dialect = PGDialect_pyodbc()
    url = sa.make_url(
        "postgresql+pyodbc://postgres:s;cret@127.0.0.1:5433/legacy?driver=PostgreSQL+Unicode&sslmode=require"
    )
    (connection_string,), _ = dialect.create_connect_args(url)
    parts = connection_string.split(";")
    assert "DRIVER={PostgreSQL Unicode}" in parts
    assert "Port=5433" in parts and "Server=127.0.0.1" in parts
    assert "BoolsAsChar=0" in parts and "sslmode=require" in parts
    assert "PWD={s;cret}" in connection_string  # values with ';' are braced
    assert "Trusted_Connection" not in connection_string


def test_sqlite_odbc_connection_string() -> None:
    (connection_string,), kwargs = SQLiteDialect_pyodbc().create_connect_args(
        sa.make_url("sqlite+pyodbc:////data/x.db")
    )
    assert connection_string == "DRIVER={SQLite3};Database=/data/x.db;StepAPI=1"
    assert kwargs == {"autocommit": True}


def test_mariadb_port_split() -> None:
    assert split_server_port("DRIVER={MariaDB Unicode};Server=db,3307;Database=x") == (
        "DRIVER={MariaDB Unicode};Server=db;Port=3307;Database=x"
    )


def test_mssql_connection_options() -> None:
    backend = get_backend(URLS["mssql"])
    read_only = DatabaseConfig(url=URLS["mssql"], read_only=True)
    base = "DRIVER={ODBC Driver 18 for SQL Server};Server=db,1433;Database=legacy;TrustServerCertificate=yes"
    assert backend._connection_string(base, read_only).endswith(";ApplicationIntent=ReadOnly")  # type: ignore[attr-defined]
    user_set = base + ";ApplicationIntent=ReadWrite"
    assert backend._connection_string(user_set, read_only) == user_set  # type: ignore[attr-defined]
    freetds = "DRIVER={FreeTDS};Server=db;Port=1433;Database=legacy"
    assert "TDS_Version=7.4" in backend._connection_string(freetds, DatabaseConfig(url=URLS["mssql"]))  # type: ignore[attr-defined]
    options = backend.engine_options(DatabaseConfig(url=URLS["mssql"], pool_size=7, connect_timeout_s=3))
    assert options["pool_size"] == 7 and options["max_overflow"] == 0
    assert options["connect_args"] == {"timeout": 3}


def test_mssql_url_passes_options_through() -> None:
    url = sa.make_url(
        "mssql+pyodbc://sa:pw@db:1433/legacy?driver=ODBC+Driver+18+for+SQL+Server"
        "&TrustServerCertificate=yes&Encrypt=yes&ApplicationIntent=ReadOnly"
    )
    (connection_string,), _ = mssql.pyodbc.dialect().create_connect_args(url)
    for part in ("Server=db,1433", "TrustServerCertificate=yes", "Encrypt=yes", "ApplicationIntent=ReadOnly"):
        assert part in connection_string


def test_datetimeoffset_converter() -> None:
    raw = struct.pack("<6hI2h", 2026, 3, 29, 1, 30, 15, 123_456_700, 1, 0)
    assert decode_datetimeoffset(raw) == dt.datetime(
        2026, 3, 29, 1, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1))
    )


LEGACY_YAML = """
database: {url: "mssql+pyodbc://u:p@db/legacy?driver=FreeTDS"}
auth: {hs256_secret: "%s"}
versions:
  v1:
    resources:
      orders:
        table: dbo.[Order Details]
        key: [order_id, line]
        where: "[Status] <> 'X'"
        fields:
          order_id: {column: Order ID, type: string, transform: trim, length: 10}
          line: {column: Select, type: integer}
          ordered: {column: Order Date, type: datetime}
          amount: {column: MONEY, type: decimal}
          paid: {column: BIT, type: boolean}
"""


def test_mssql_compiles_legacy_names_and_keyset(tmp_path: Path) -> None:
    path = tmp_path / "legacy.yaml"
    path.write_text(LEGACY_YAML % JWT_SECRET, encoding="utf-8")
    resource = bind_version(load_mapping(path, {}), "v1")["orders"]
    order = order_for(resource, [(resource.fields["ordered"], True)])
    columns = selected_columns(resource.fields.values(), order)
    statement = build_select(resource, columns, [Keyset(order, (dt.datetime(2026, 1, 1), "A1", 3))], order, 51)
    sql = str(statement.compile(dialect=mssql.pyodbc.dialect()))
    assert "FROM dbo.[Order Details]" in sql
    assert "[Order ID]" in sql and "[Select]" in sql and "[Order Date]" in sql
    assert "TOP" in sql or "FETCH" in sql
    assert "([Order Date], " not in sql, "T-SQL has no row values: keyset must be expanded"
    assert sql.count(" OR ") >= 2
    assert "ORDER BY dbo.[Order Details].[Order Date] DESC" in sql


def test_demo_mapping_compiles_for_every_backend() -> None:
    mapping = load_mapping(DEMO_MAPPING_PATH, {"BRIDGEHEAD_JWT_SECRET": JWT_SECRET})
    jobs = bind_version(mapping, "v1")["jobs"]
    order = order_for(jobs, [(jobs.fields["due_date"], True)])
    statement = build_select(jobs, selected_columns(jobs.fields.values(), order), [], order, 10, 20)
    for url in URLS.values():
        dialect = sa.create_engine(url).dialect
        sql = str(statement.compile(dialect=dialect))
        assert "JOBMAST" in sql and "DUEDT" in sql
