"""Reads on the driver's own cursor keep what SQLAlchemy's execute path gave them, on every backend.

``Reader.get`` and ``Reader.page`` run their compiled SQL on the pooled connection's raw
cursor (``Database.fetch_rows``). What that path must still do by itself: bound every
statement by the statement timeout (a server setting on PostgreSQL and MariaDB, a
watchdog on sqliteodbc, a progress handler on sqlite3), leave the connection healthy
after a cancel, classify a driver error exactly as the SQLAlchemy path does, and tell
the statements metric's observer of each statement.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from db_backends import JWT_SECRET, portable_mapping_text, prepared_url

from legacy_adapters.database import Database
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
