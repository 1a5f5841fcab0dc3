"""Reads on the driver's own cursor keep what SQLAlchemy's execute path gave them, on every backend.

``Reader.get`` and ``Reader.page`` run their compiled SQL on the pooled connection's raw
cursor (``Database.fetch_rows``). What that path must still do by itself: bound every
statement by the statement timeout (a server setting on PostgreSQL and MariaDB, a
watchdog on sqliteodbc, a progress handler on sqlite3), leave the connection healthy
after a cancel, classify a driver error exactly as the SQLAlchemy path does, and tell
the statements metric's observer of each statement.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from db_backends import JWT_SECRET, portable_mapping_text, prepared_url, prepared_writes_url

from legacy_adapters.database import _CURSORS, Database
from legacy_adapters.exceptions import SchemaDrift, StatementTimeout
from legacy_adapters.mapping import Mapping, load_mapping
from legacy_adapters.query.builder import build_count
from legacy_adapters.query.filters import Comparison
from legacy_adapters.query.resource import Resource, bind_version
from legacy_adapters.reader import Reader, ReadQuery

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("sqlite-odbc", id="sqlite-odbc", marks=pytest.mark.odbc),
    pytest.param("postgresql-odbc", id="postgresql-odbc", marks=pytest.mark.odbc),
    pytest.param("mariadb-odbc", id="mariadb-odbc", marks=pytest.mark.odbc),
]

_FOREVER = "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c) > 0"
SLOW_WHERE = {
    "sqlite": _FOREVER,
    "sqlite-odbc": _FOREVER,
    "postgresql-odbc": "(SELECT count(*) FROM pg_sleep(3)) = 1",
    "mariadb-odbc": "SLEEP(3) = 0",
}
JOBS_WHERE = "where: \"{DELFLG} <> 'Y'\"\n        scopes: {read: jobs:read, write: jobs:write}"


def _mapping(url: str, tmp: Path, jobs_where: str | None = None, jobs_table: str | None = None) -> Mapping:
    text = portable_mapping_text(url).replace("statement_timeout_s: 5", "statement_timeout_s: 1\n  pool_size: 1")
    assert JOBS_WHERE in text
    if jobs_where is not None:
        text = text.replace(JOBS_WHERE, JOBS_WHERE.replace("{DELFLG} <> 'Y'", f"{{DELFLG}} <> 'Y' AND {jobs_where}"))
    if jobs_table is not None:
        text = text.replace("table: JOBMAST\n", f"table: {jobs_table}\n", 1)
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "bridgehead.yaml"
    path.write_text(text, encoding="utf-8")
    return load_mapping(path, {"BRIDGEHEAD_JWT_SECRET": JWT_SECRET, "BRIDGEHEAD_DB_URL": url})


def _jobs(mapping: Mapping) -> Resource:
    return bind_version(mapping, "v1")["jobs"]


def _page(jobs: Resource) -> ReadQuery:
    status = Comparison(jobs.fields["status"], "eq", "complete", "status")
    return ReadQuery(jobs, tuple(jobs.fields.values()), (status,), ((jobs.fields["due_date"], False),), limit=5)


@pytest.mark.parametrize("case_id", BACKENDS)
def test_the_statement_timeout_cancels_raw_reads_and_the_connection_stays_sound(
    case_id: str, demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = prepared_url(case_id, demo_db_path, tmp_path_factory)
    tmp = tmp_path_factory.mktemp("raw-timeout")
    slow = _jobs(_mapping(url, tmp / "slow", jobs_where=SLOW_WHERE[case_id]))
    plain_mapping = _mapping(url, tmp / "plain")
    plain = _jobs(plain_mapping)
    database = Database(plain_mapping.database)  # one pooled connection: a cancelled one is reused
    # A reader's plans are per resource name: one reader for each of the two "jobs".
    reader, plain_reader = Reader(database), Reader(database)
    fields = tuple(slow.fields.values())
    try:
        for _ in range(2):  # the second time through the prepared statement and the cached page plan
            for read in (lambda: reader.get(slow, ("J000001",), fields), lambda: reader.page(_page(slow))):
                started = time.monotonic()
                with pytest.raises(StatementTimeout):
                    read()
                assert time.monotonic() - started < 2.5
            found = plain_reader.get(plain, ("J000001",), tuple(plain.fields.values()))
            assert found is not None and found[0]["job_number"] == "J000001"
            assert plain_reader.page(_page(plain)).rows
    finally:
        database.dispose()


@pytest.mark.parametrize("case_id", BACKENDS)
def test_a_driver_error_on_the_raw_path_is_classified_as_on_sqlalchemys(
    case_id: str, demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = prepared_url(case_id, demo_db_path, tmp_path_factory)
    mapping = _mapping(url, tmp_path_factory.mktemp("raw-errors"), jobs_table="BH_NO_SUCH_TABLE")
    missing = _jobs(mapping)
    database = Database(mapping.database)
    reader = Reader(database)
    seen: list[str] = []
    database.observe_statements(lambda sql, _parameters, _seconds: seen.append(sql))
    try:
        with pytest.raises(SchemaDrift) as through_sqlalchemy:
            database.scalar(build_count(missing))
        for read in (
            lambda: reader.get(missing, ("J000001",), tuple(missing.fields.values())),
            lambda: reader.page(_page(missing)),
        ):
            with pytest.raises(SchemaDrift) as raw:
                read()
            assert str(raw.value) == str(through_sqlalchemy.value)
            assert raw.value.__cause__ is None  # the driver's words stay in the log
        assert not seen  # a failed statement is not timed as answered
        ok = _jobs(_mapping(url, tmp_path_factory.mktemp("raw-ok")))
        assert Reader(database).get(ok, ("J000001",), tuple(ok.fields.values())) is not None
        assert [s.lstrip().split(None, 1)[0].upper() for s in seen] == ["SELECT"]
    finally:
        database.dispose()


@pytest.mark.parametrize("case_id", BACKENDS)
def test_a_read_runs_its_prepared_statement_again_and_never_sees_a_stale_row(
    case_id: str, demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Each pooled connection keeps a cursor per statement, prepared once (a new cursor per read
    # prepared it every time). What must hold: new values give their own rows, the kept cursor holds
    # no lock or snapshot (another connection's write goes through, and the next read sees it, on
    # the same statement and on another one), and the cursors stay bounded.
    url = prepared_writes_url(case_id, demo_db_path, tmp_path_factory)
    mapping = _mapping(url, tmp_path_factory.mktemp("raw-prepared"))  # pool_size 1: one connection
    jobs = _jobs(mapping)
    fields = tuple(jobs.fields.values())
    database = Database(mapping.database)
    reader = Reader(database)
    writer = sa.create_engine(url)
    table = sa.table("JOBMAST", sa.column("JOBNO"), sa.column("NOTES"))
    key = sa.func.rtrim(sa.column("JOBNO")) == sa.bindparam("k")  # CHAR(10): padded on SQLite

    def note(job: str) -> str | None:
        found = reader.get(jobs, (job,), fields)
        assert found is not None and found[0]["job_number"] == job
        return found[0]["notes"]  # type: ignore[no-any-return]

    try:
        with writer.connect() as conn:
            before = {
                job: conn.execute(sa.select(table.c.NOTES).where(key), {"k": job}).scalar()
                for job in ("J000001", "J000002")
            }
        assert len(before) == 2 and all(isinstance(v, str | None) for v in before.values())
        first, second = note("J000001"), note("J000002")
        assert [first, second] == [(v.strip() or None) if v else None for v in before.values()]
        with writer.begin() as conn:  # blocked, on SQLite, if the kept cursor still held its read lock
            conn.execute(table.update().where(key).values(NOTES="first write"), {"k": "J000002"})
        assert note("J000002") == "first write"
        connection = database.engine.pool.connect()
        try:
            kept = dict(connection.info[_CURSORS])
        finally:
            connection.close()
        assert kept  # the statement's cursor was kept for its next run
        assert reader.page(_page(jobs)).rows  # another statement on the same connection meanwhile
        with writer.begin() as conn:
            conn.execute(table.update().where(key).values(NOTES="written meanwhile"), {"k": "J000001"})
        assert note("J000001") == "written meanwhile"  # the same prepared statement: no stale snapshot
        assert reader.page(_page(jobs)).rows
        connection = database.engine.pool.connect()
        try:
            again = connection.info[_CURSORS]
            assert all(again.get(sql) is cursor for sql, cursor in kept.items())  # run again, not remade
        finally:
            connection.close()
    finally:
        with writer.begin() as conn:
            for job, value in before.items():
                conn.execute(table.update().where(key).values(NOTES=value), {"k": job})
        writer.dispose()
        database.dispose()


def test_a_prepared_statement_over_a_typed_column_gets_its_values_converted(
    demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A migration twin's columns are typed (SQLite keeps a Date as text, SQLAlchemy's result makes it
    # a date again): a prepared page or get over them must not hand the driver's text on as the value.
    tmp = tmp_path_factory.mktemp("typed")
    url = f"sqlite:///{tmp / 'typed.db'}"
    database = Database(_mapping(url, tmp).database)
    table = sa.Table(
        "typed_rows",
        sa.MetaData(),
        sa.Column("id", sa.Integer),
        sa.Column("due", sa.Date),
        sa.Column("qty", sa.Numeric(9, 2)),
    )
    try:
        with database.engine.begin() as conn:
            table.create(conn)
            conn.execute(table.insert(), [{"id": 1, "due": dt.date(2026, 12, 1), "qty": Decimal("12.50")}])
        prepared = database.prepare(sa.select(table.c.due, table.c.qty).where(table.c.id == sa.bindparam("bh_k0", 0)))
        assert not prepared.raw_rows
        assert [tuple(row) for row in database.fetch_prepared(prepared, {"bh_k0": 1})] == [
            (dt.date(2026, 12, 1), Decimal("12.50"))
        ]
        untyped = database.prepare(
            sa.select(sa.column("id"))
            .select_from(sa.table("typed_rows"))
            .where(sa.column("id") == sa.bindparam("bh_k0", 0))
        )
        assert untyped.raw_rows and [tuple(r) for r in database.fetch_prepared(untyped, {"bh_k0": 1})] == [(1,)]
    finally:
        database.dispose()
