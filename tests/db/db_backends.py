"""Backends under test, how to make each one ready, and mappings that serve them (used by conftest and tests).

The read tests share one loaded database per backend (``prepared_url``). Write
tests get their own (``prepared_writes_url``: database ``bridgehead_writes``, or
a separate SQLite file) so nothing they change can reach the read tests; the
tables they write are saved once after the load and put back by
``restore_written_tables`` after each test, which is far quicker than a reload.
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.demo.load import load_demo
from legacy_adapters.mapping import Mapping, load_mapping
from tests.conftest import JWT_SECRET, service_unavailable

# BRIDGEHEAD_TEST_DB_SUFFIX keeps checkouts that run the suite at the same time on one server apart.
_SUFFIX = os.environ.get("BRIDGEHEAD_TEST_DB_SUFFIX", "")
TEST_DATABASE = f"bridgehead_tests{_SUFFIX}"
WRITES_DATABASE = f"bridgehead_writes{_SUFFIX}"
WRITTEN_TABLES = ("JOBMAST", "JOBOPS")
"""The demo tables the write tests change (and ``restore_written_tables`` puts back)."""
SAVED_PREFIX = "BH_SAVED_"
PG_URL = os.environ.get(
    "BRIDGEHEAD_TEST_PG_URL",
    f"postgresql+pyodbc://postgres@127.0.0.1:5432/{TEST_DATABASE}?driver=PostgreSQL+Unicode",
)
MARIADB_URL = os.environ.get(
    "BRIDGEHEAD_TEST_MARIADB_URL",
    f"mysql+pyodbc://root@127.0.0.1:3306/{TEST_DATABASE}?driver=MariaDB+Unicode",
)
MSSQL_URL = os.environ.get("BRIDGEHEAD_MSSQL_URL", "")


@dataclass(frozen=True)
class BackendCase:
    id: str
    driver: str | None
    """The ODBC driver name it needs (``None``: no ODBC)."""
    always_skippable: bool = False


CASES = (
    BackendCase("sqlite", None),
    BackendCase("sqlite-odbc", "SQLite3"),
    BackendCase("postgresql-odbc", "PostgreSQL Unicode"),
    BackendCase("mariadb-odbc", "MariaDB Unicode"),
    BackendCase("mssql", None, always_skippable=True),
)
BACKEND_PARAMS = [
    pytest.param(case, id=case.id, marks=[pytest.mark.odbc] if case.id != "sqlite" else []) for case in CASES
]


def unavailable(reason: str, *, always_skippable: bool = False) -> None:
    """Skip locally; fail in CI, where every backend but SQL Server must be there."""
    if always_skippable:
        pytest.skip(reason)
    service_unavailable(f"{reason}; run scripts/setup-odbc and start the database")


def require_driver(name: str) -> None:
    try:
        import pyodbc
    except ImportError as exc:  # libodbc.so.2 missing: pyodbc's import fails
        unavailable(f"pyodbc cannot load the ODBC driver manager ({exc}); run scripts/setup-odbc")
    if name not in pyodbc.drivers():
        unavailable(f"ODBC driver {name!r} is not registered (odbcinst -q -d); run scripts/setup-odbc")


def require_port(url: sa.URL, default_port: int) -> None:
    host, port = url.host or "127.0.0.1", url.port or default_port
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        unavailable(f"no database server listening on {host}:{port}")


def _odbc_admin(url: sa.URL, statement: str) -> None:
    """Run one statement against the server's default database (to create the test database)."""
    import pyodbc

    if url.get_backend_name() == "postgresql":
        server = f"Server={url.host};Port={url.port or 5432};Database=test;UID={url.username}"
    else:
        server = f"Server={url.host};Port={url.port or 3306};UID={url.username}"
    driver = url.query["driver"]
    conn = pyodbc.connect(f"DRIVER={{{driver}}};{server}", autocommit=True, timeout=5)
    try:
        conn.cursor().execute(statement)
    except pyodbc.Error as exc:
        if "already exists" not in str(exc):
            raise
    finally:
        conn.close()


def _prepare(case: BackendCase, demo_db_path: Path, tmp: Path, database: str = TEST_DATABASE) -> str:
    """Make ``case``'s database ready with the demo data; return its SQLAlchemy URL."""
    if case.id == "sqlite":
        return f"sqlite:///{demo_db_path}"
    if case.id == "mssql":
        if not MSSQL_URL:
            unavailable("BRIDGEHEAD_MSSQL_URL is not set (a scratch SQL Server database)", always_skippable=True)
        load_demo(demo_db_path, MSSQL_URL, schema=os.environ.get("BRIDGEHEAD_MSSQL_SCHEMA", "dbo"))
        return MSSQL_URL
    assert case.driver is not None
    require_driver(case.driver)
    if case.id == "sqlite-odbc":
        url = f"sqlite+pyodbc:///{tmp / f'{database}.db'}"
    elif case.id == "postgresql-odbc":
        parsed = _with_database(PG_URL, database)
        require_port(parsed, 5432)
        _odbc_admin(parsed, f'CREATE DATABASE "{parsed.database}"')
        url = parsed.render_as_string(hide_password=False)
    else:
        parsed = _with_database(MARIADB_URL, database)
        require_port(parsed, 3306)
        _odbc_admin(parsed, f"CREATE DATABASE IF NOT EXISTS `{parsed.database}`")
        url = parsed.render_as_string(hide_password=False)
    load_demo(demo_db_path, url)
    return url


def _with_database(url: str, database: str) -> sa.URL:
    """``url`` pointing at ``database`` (the read tests' database unless it is the default one)."""
    parsed = sa.make_url(url)
    return parsed if database == TEST_DATABASE else parsed.set(database=database)


_prepared: dict[str, str] = {}


def prepared_url(case_id: str, demo_db_path: Path, factory: pytest.TempPathFactory) -> str:
    """The URL of ``case_id``'s database with the demo data in it, loading it on first use."""
    if case_id not in _prepared:
        case = next(c for c in CASES if c.id == case_id)
        _prepared[case_id] = _prepare(case, demo_db_path, factory.mktemp(case_id))
    return _prepared[case_id]


def prepared_writes_url(case_id: str, demo_db_path: Path, factory: pytest.TempPathFactory) -> str:
    """A database of its own for ``case_id``'s write tests, loaded once, its written tables saved.

    SQL Server has one scratch database (``BRIDGEHEAD_MSSQL_URL``): there the write
    tests share it with the read tests and rely on ``restore_written_tables``.
    """
    key = f"{case_id}/writes"
    if key not in _prepared:
        case = next(c for c in CASES if c.id == case_id)
        tmp = factory.mktemp(f"{case_id}-writes")
        if case.id == "sqlite":  # _prepare serves the session's shared, read-only file: write to a copy
            copy = tmp / "writes.db"
            shutil.copyfile(demo_db_path, copy)
            url = f"sqlite:///{copy}"
        else:
            url = _prepare(case, demo_db_path, tmp, WRITES_DATABASE)
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                quote = conn.dialect.identifier_preparer.quote
                for table in WRITTEN_TABLES:
                    saved = quote(SAVED_PREFIX + table)
                    if sa.inspect(conn).has_table(SAVED_PREFIX + table):
                        conn.exec_driver_sql(f"DROP TABLE {saved}")
                    if conn.dialect.name == "mssql":
                        conn.exec_driver_sql(f"SELECT * INTO {saved} FROM {quote(table)}")
                    else:
                        conn.exec_driver_sql(f"CREATE TABLE {saved} AS SELECT * FROM {quote(table)}")
        finally:
            engine.dispose()
        _prepared[key] = url
    return _prepared[key]


def restore_written_tables(conn: sa.Connection) -> None:
    """Put back the rows ``prepared_writes_url`` saved (the indexes stay: no reload needed)."""
    quote = conn.dialect.identifier_preparer.quote
    for table in WRITTEN_TABLES:
        conn.exec_driver_sql(f"DELETE FROM {quote(table)}")
        conn.exec_driver_sql(f"INSERT INTO {quote(table)} SELECT * FROM {quote(SAVED_PREFIX + table)}")


def portable_mapping_text(url: str) -> str:
    """The demo mapping's YAML, the same on every engine: its ``where`` names columns as
    ``{DELFLG}``, which each dialect quotes its own way (PostgreSQL would fold a bare DELFLG)."""
    del url  # kept for callers; nothing differs per engine any more
    return DEMO_MAPPING_PATH.read_text(encoding="utf-8")


def mapping_for(
    url: str,
    tmp: Path,
    *,
    state_url: str | None = None,
    job_actions: str = "",
    resources: str = "",
    **database: Any,
) -> Mapping:
    """The demo mapping serving ``url``; ``database`` overrides ``database:`` settings.

    Args:
        url: the legacy database.
        tmp: where the mapping file (and, unless ``state_url`` names one, the state store) is written.
        state_url: the state store (idempotency keys, audit); default a SQLite file in ``tmp``,
            so no test shares keys or audit rows with another.
        job_actions: YAML of extra ``jobs`` actions, indented as the demo's ``release``.
        resources: YAML of extra ``v1`` resources, indented as the demo's ``customers``.
    """
    text = portable_mapping_text(url)
    timeout = database.pop("statement_timeout_s", 5)
    for key, value in database.items():
        text = text.replace("  statement_timeout_s: 5\n", f"  statement_timeout_s: 5\n  {key}: {value}\n")
    text = text.replace("  statement_timeout_s: 5\n", f"  statement_timeout_s: {timeout}\n")
    if job_actions:
        marker = "        actions:\n"
        assert marker in text, "the demo mapping's jobs have no actions block any more"
        text = text.replace(marker, marker + job_actions.rstrip("\n") + "\n", 1)
    if resources:
        marker = "    resources:\n"
        text = text.replace(marker, marker + resources.rstrip("\n") + "\n", 1)
    path = tmp / "bridgehead.yaml"
    path.write_text(text, encoding="utf-8")
    environ = {
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_DB_URL": url,
        "BRIDGEHEAD_STATE_URL": state_url or f"sqlite:///{tmp / 'state.db'}",
    }
    return load_mapping(path, environ)


# -- a wide table for export tests: generated by each server, kept between sessions -------------------

BIG_ROWS = 150_000
BIG_TABLE = "BH_EXPORT_BIG"
NOTE_WIDTH = 200
BIG_RESOURCE = """\
      export_rows:
        table: BH_EXPORT_BIG
        key: row_id
        anonymous: true
        fields:
          row_id: {column: ROWID_, type: integer}
          status: {column: ST, type: string, transform: trim, map: {C: complete, O: open}}
          note: {column: NOTE, type: string}
"""


def fill_big_table(url: str) -> None:
    """150k rows of ~200 bytes, half of them complete; generated by the server itself, kept when present."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            quote = conn.dialect.identifier_preparer.quote
            table, rowid, st, note = (quote(n) for n in (BIG_TABLE, "ROWID_", "ST", "NOTE"))
            if sa.inspect(conn).has_table(BIG_TABLE):
                if int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()) == BIG_ROWS:
                    return
                conn.exec_driver_sql(f"DROP TABLE {table}")
            conn.exec_driver_sql(
                f"CREATE TABLE {table} ({rowid} INTEGER PRIMARY KEY, {st} CHAR(1) NOT NULL, {note} VARCHAR(250))"
            )
            status = "CASE WHEN n % 2 = 0 THEN 'C' ELSE 'O' END"
            name = conn.dialect.name
            if name == "postgresql":
                source = f"SELECT n, {status}, repeat('x', {NOTE_WIDTH}) || n FROM generate_series(1, {BIG_ROWS}) n"
            elif name in ("mysql", "mariadb"):
                source = f"SELECT seq, {status.replace('n %', 'seq %')}, CONCAT(REPEAT('x', {NOTE_WIDTH}), seq) "
                source += f"FROM seq_1_to_{BIG_ROWS}"
            else:
                # INSERT first: sqliteodbc would take a statement starting with WITH for a query.
                source = (
                    f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {BIG_ROWS}) "
                    f"SELECT n, {status}, substr(hex(zeroblob({NOTE_WIDTH})), 1, {NOTE_WIDTH}) || n FROM s"
                )
            conn.exec_driver_sql(f"INSERT INTO {table} {source}")
    finally:
        engine.dispose()
