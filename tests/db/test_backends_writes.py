"""Writes over HTTP on every ODBC backend: stored in legacy form, all-or-nothing, race-safe, idempotent.

Each backend's write tests run against a database of their own
(``prepared_writes_url``), and every test puts JOBMAST and JOBOPS back when it
ends (``restore_written_tables``), so no write reaches the read tests that compare
with native SQLite, nor the next write test. Stored values are checked with
direct SQL, bypassing the gateway; "nothing changed" compares every row of the table.

Real stored procedures are created in the write database: a PL/pgSQL procedure on
PostgreSQL, a MariaDB procedure (and a T-SQL one when ``BRIDGEHEAD_MSSQL_URL`` is
set) that release a job, and a twin of each that fails after its UPDATE.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from db_backends import (
    BACKEND_PARAMS,
    BackendCase,
    mapping_for,
    prepared_writes_url,
    require_port,
    restore_written_tables,
)
from litestar.testing import TestClient

from gateway import create_app

Client = TestClient[Any]
TokenFactory = Callable[..., str]

WRITE_PARAMS = [p for p in BACKEND_PARAMS if p.id != "sqlite"]  # native SQLite: tests/api/test_writes.py
PG_STATE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

NEW_JOB = {
    "job_number": "J900001",
    "customer_id": "C0001",
    "item_number": "BRKT-00001",
    "status": "on_hold",
    "ordered_at": "2026-11-26T10:00:00Z",
    "due_date": "2026-12-15",
    "rush": True,
    "quantity": 12.5,
    "priority": False,
    "notes": "from the API",
}
NEW_JOB_STORED = (
    "J900001   ", "C0001   ", "BRKT-00001     ", "H", 20261126, 100000, 20261215, "Y", 1250, 0, "from the API", "N",
)  # fmt: skip
"""NEW_JOB as the legacy system keeps it: CHAR padding, YYYYMMDD + HHMMSS (UK time), 'Y'/'N', cents, 1/0."""

# Declared SQL names columns in braces, quoted per engine like the mapping's `where`:
# a bare JOBMAST would fold to jobmast on PostgreSQL. The second statement copies the
# job's operations onto themselves, which JOBOPS_K1 (unique JOBNO, OPSEQ) refuses.
JOB_ACTIONS = """
          release_and_copy:
            sql:
              - "UPDATE {JOBMAST} SET {JSTAT} = 'R' WHERE {JOBNO} = :JobNo"
              - "INSERT INTO {JOBOPS}
                   ({JOBNO}, {OPSEQ}, {WRKCTR}, {OPDESC}, {STDHRS}, {OPSTAT}, {STRDT}, {STRTM}, {DONEFL})
                 SELECT {JOBNO}, {OPSEQ}, {WRKCTR}, {OPDESC}, {STDHRS}, {OPSTAT}, {STRDT}, {STRTM}, {DONEFL}
                 FROM {JOBOPS} WHERE {JOBNO} = :JobNo"
            params: {JobNo: job_number}
            scope: jobs:release
          release_sql:
            sql: "UPDATE {JOBMAST} SET {JSTAT} = 'R' WHERE {JOBNO} = :JobNo AND {JSTAT} = 'H'"
            params: {JobNo: job_number}
            scope: jobs:release
          release_proc:
            procedure: bh_release_job
            params: {job_no: job_number}
            scope: jobs:release
          release_proc_fails:
            procedure: bh_release_job_fails
            params: {job_no: job_number}
            scope: jobs:release
"""

# The procedures' failure message names the table: it must never reach the client.
PROCEDURES: dict[str, list[str]] = {
    "postgresql": [
        """CREATE OR REPLACE PROCEDURE bh_release_job(job_no CHAR(10)) LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE "JOBMAST" SET "JSTAT" = 'R' WHERE "JOBNO" = job_no AND "JSTAT" = 'H';
        END $$""",
        """CREATE OR REPLACE PROCEDURE bh_release_job_fails(job_no CHAR(10)) LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE "JOBMAST" SET "JSTAT" = 'R' WHERE "JOBNO" = job_no AND "JSTAT" = 'H';
            RAISE EXCEPTION 'JOBMAST % has an incomplete routing', job_no;
        END $$""",
    ],
    "mysql": [
        "DROP PROCEDURE IF EXISTS bh_release_job",
        # The SELECT makes a result set: the action answers it as rows.
        """CREATE PROCEDURE bh_release_job(IN job_no CHAR(10))
        BEGIN
            UPDATE JOBMAST SET JSTAT = 'R' WHERE JOBNO = job_no AND JSTAT = 'H';
            SELECT ROW_COUNT() AS released;
        END""",
        "DROP PROCEDURE IF EXISTS bh_release_job_fails",
        """CREATE PROCEDURE bh_release_job_fails(IN job_no CHAR(10))
        BEGIN
            UPDATE JOBMAST SET JSTAT = 'R' WHERE JOBNO = job_no AND JSTAT = 'H';
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'JOBMAST has an incomplete routing';
        END""",
    ],
    "mssql": [
        """CREATE OR ALTER PROCEDURE bh_release_job @job_no CHAR(10) AS
        BEGIN
            SET NOCOUNT ON;
            UPDATE JOBMAST SET JSTAT = 'R' WHERE JOBNO = @job_no AND JSTAT = 'H';
        END""",
        """CREATE OR ALTER PROCEDURE bh_release_job_fails @job_no CHAR(10) AS
        BEGIN
            SET NOCOUNT ON;
            UPDATE JOBMAST SET JSTAT = 'R' WHERE JOBNO = @job_no AND JSTAT = 'H';
            THROW 50001, 'JOBMAST has an incomplete routing', 1;
        END""",
    ],
}


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=WRITE_PARAMS)
def write_backend(request: pytest.FixtureRequest) -> BackendCase:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def writes_url(write_backend: BackendCase, demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return prepared_writes_url(write_backend.id, demo_db_path, tmp_path_factory)


@pytest.fixture(scope="module")
def direct(writes_url: str) -> Iterator[sa.Engine]:
    """An engine on the write database for checks that bypass the gateway (and its procedures)."""
    engine = sa.create_engine(writes_url)
    if engine.dialect.name == "mysql":

        @sa.event.listens_for(engine, "connect")
        def _full_char(dbapi_conn: Any, _record: Any) -> None:
            # MariaDB strips CHAR padding when it reads; ask for the padded value that is stored.
            cursor = dbapi_conn.cursor()
            cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',PAD_CHAR_TO_FULL_LENGTH')")
            cursor.close()

    with engine.begin() as conn:
        for statement in PROCEDURES.get(engine.dialect.name, []):
            conn.exec_driver_sql(statement)
    yield engine
    engine.dispose()


@pytest.fixture
def fresh(direct: sa.Engine) -> Iterator[sa.Engine]:
    """The write database, with JOBMAST and JOBOPS put back after the test (even a failed one)."""
    yield direct
    with direct.begin() as conn:
        restore_written_tables(conn)


def _client(url: str, tmp: Path, **options: Any) -> Iterator[Client]:
    with TestClient(create_app(mapping_for(url, tmp, job_actions=JOB_ACTIONS, **options))) as client:
        yield client


@pytest.fixture
def writer(writes_url: str, fresh: sa.Engine, tmp_path: Path) -> Iterator[Client]:
    """The real app on the write database; its state store (keys, audit) is this test's own SQLite file."""
    yield from _client(writes_url, tmp_path)


@pytest.fixture
def app_headers(token: TokenFactory) -> dict[str, str]:
    scopes = ("jobs:read", "jobs:read:all", "jobs:write", "jobs:release")
    return {"Authorization": f"Bearer {token(*scopes, sub='planner-app')}"}


# -- direct SQL -----------------------------------------------------------------------------------------


def _q(engine: sa.Engine) -> Callable[[str], str]:
    return engine.dialect.identifier_preparer.quote


def checksum(engine: sa.Engine, table: str = "JOBMAST") -> list[tuple[Any, ...]]:
    """Every row of ``table`` in key order: compared before and after, a change names the rows it touched
    (a bare digest said only *that* something changed, which left a once-in-a-run failure unexplained)."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT * FROM {_q(engine)(table)} ORDER BY 1, 2").all()
    return [tuple(r) for r in rows]


def stored(engine: sa.Engine, job_number: str) -> tuple[Any, ...] | None:
    """The columns the jobs resource maps (PAIDFL/PAIDDT belong to job_invoices, written by Xero webhooks)."""
    q = _q(engine)
    columns = ", ".join(q(c) for c in JOBMAST_COLUMNS)
    sql = sa.text(f"SELECT {columns} FROM {q('JOBMAST')} WHERE {q('JOBNO')} = :job")
    with engine.connect() as conn:
        row = conn.execute(sql, {"job": job_number.ljust(10)}).first()
    return None if row is None else tuple(row)


def column(engine: sa.Engine, job_number: str, name: str) -> Any:
    row = stored(engine, job_number)
    assert row is not None, job_number
    return row[JOBMAST_COLUMNS.index(name)]


JOBMAST_COLUMNS = ("JOBNO", "CUSTNO", "ITEMNO", "JSTAT", "ORDDT", "ORDTM", "DUEDT", "RUSHFL", "QTY", "PRIO", "NOTES",
                   "DELFLG")  # fmt: skip


def execute(engine: sa.Engine, sql: str, **params: Any) -> Any:
    """Run author-written SQL with ``{COLUMN}`` names quoted for ``engine``."""
    q = _q(engine)
    for name in (*JOBMAST_COLUMNS, "JOBMAST"):
        sql = sql.replace("{" + name + "}", q(name))
    with engine.begin() as conn:
        result = conn.execute(sa.text(sql), params)
        return result.all() if result.returns_rows else result.rowcount


def held_job(engine: sa.Engine) -> str:
    rows = execute(engine, "SELECT {JOBNO} FROM {JOBMAST} WHERE {JSTAT} = 'H' AND {DELFLG} <> 'Y' ORDER BY 1")
    return str(rows[0][0]).strip()


def assert_safe_problem(response: Any, *words: str) -> None:
    """A problem+json whose text names no table, driver, SQLSTATE or database message."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    text = response.text
    for word in ("JOBMAST", "JOBOPS", "ODBC", "SQLSTATE", "routing", "sqlite", "psql", "MariaDB", *words):
        assert word.lower() not in text.lower(), (word, text)
    assert not re.search(r"\[[A-Za-z]", text), text  # a driver's "[HY000] [ma-3.1.15]..." prefix


def parallel(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(0..count-1)`` in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(n: int) -> None:
        barrier.wait()
        results[n] = work(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# -- create ---------------------------------------------------------------------------------------------


def test_create_stores_the_legacy_form(writer: Client, fresh: sa.Engine, app_headers: dict[str, str]) -> None:
    response = writer.post("/v1/jobs", json=NEW_JOB, headers=app_headers)
    assert response.status_code == 201, response.text
    assert response.json() == NEW_JOB
    assert response.headers["location"] == "/v1/jobs/J900001"
    assert stored(fresh, "J900001") == NEW_JOB_STORED
    again = writer.get("/v1/jobs/J900001", headers=app_headers)
    assert again.json() == NEW_JOB and again.headers["etag"] == response.headers["etag"]
    # Absent optional fields are written as the legacy "none" values: DUEDT 0, NOTES ''.
    bare = {k: v for k, v in NEW_JOB.items() if k not in ("due_date", "notes")} | {"job_number": "J900002"}
    assert writer.post("/v1/jobs", json=bare, headers=app_headers).status_code == 201
    row = stored(fresh, "J900002")
    assert row is not None and (row[6], row[10]) == (0, "")


BAD_BODIES = [
    ({"status": "cancelled"}, "status", "not one of"),
    ({"due_date": "2026-02-30"}, "due_date", "ISO 8601 date"),
    ({"quantity": 1.234}, "quantity", "more than 2 decimals"),
    ({"customer_id": "C000000001"}, "customer_id", "longer"),
    ({"rush": "yes"}, "rush", "true or false"),
    ({"colour": "red"}, "colour", "unknown field"),
    ({"ordered_at": "2026-11-26T10:00:00"}, "ordered_at", "offset"),
    ({"quantity": None}, "quantity", "cannot be null"),
]


def test_bad_input_leaves_the_table_unchanged(writer: Client, fresh: sa.Engine, app_headers: dict[str, str]) -> None:
    before = checksum(fresh)
    for change, field, phrase in BAD_BODIES:
        response = writer.post("/v1/jobs", json={**NEW_JOB, **change}, headers=app_headers)
        assert response.status_code == 422, (change, response.text)
        assert phrase in {e["field"]: e["detail"] for e in response.json()["errors"]}[field], response.text
        patched = writer.patch("/v1/jobs/J000001", json=change, headers=app_headers)
        assert patched.status_code == 422, (change, patched.text)
    missing = writer.post("/v1/jobs", json={"job_number": "J900003"}, headers=app_headers)
    assert missing.status_code == 422 and len(missing.json()["errors"]) >= 7
    assert writer.patch("/v1/jobs/J000001", json={"job_number": "J9"}, headers=app_headers).status_code == 422
    duplicate = writer.post("/v1/jobs", json={**NEW_JOB, "job_number": "J000001"}, headers=app_headers)
    assert duplicate.status_code == 409
    assert_safe_problem(duplicate)
    assert writer.post("/v1/jobs", content=b"{not json", headers=app_headers).status_code == 400
    assert checksum(fresh) == before


def test_values_the_column_cannot_hold_are_422(
    writer: Client, fresh: sa.Engine, app_headers: dict[str, str], writes_url: str
) -> None:
    """Limits only the database knows (NOTES is VARCHAR(200), QTY an INTEGER) refuse the write as bad input."""
    before = checksum(fresh)
    cases = [{"notes": "x" * 201}, {"quantity": 99_999_999_999}]
    for change in cases:
        response = writer.post("/v1/jobs", json={**NEW_JOB, **change}, headers=app_headers)
        if writes_url.startswith("sqlite"):  # SQLite keeps any length and 64-bit integers: nothing to refuse
            assert response.status_code == 201, response.text
            execute(fresh, "DELETE FROM {JOBMAST} WHERE {JOBNO} = 'J900001   '")
            continue
        assert response.status_code == 422, (change, response.text)
        assert_safe_problem(response)
        assert response.json()["errors"][0]["field"] == next(iter(change)), response.text
        patched = writer.patch("/v1/jobs/J000001", json=change, headers=app_headers)
        assert patched.status_code == 422, (change, patched.text)
    assert checksum(fresh) == before


# -- bulk -----------------------------------------------------------------------------------------------


def test_bulk_create_is_all_or_nothing(writer: Client, fresh: sa.Engine, app_headers: dict[str, str]) -> None:
    before = checksum(fresh)
    rows = [{**NEW_JOB, "job_number": f"J9100{i:02d}"} for i in range(5)]
    rows[3]["status"] = "cancelled"
    response = writer.post("/v1/jobs", json=rows, headers=app_headers)
    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(3, "status")]
    assert checksum(fresh) == before
    rows[3]["status"] = "planned"
    rows[4]["job_number"] = "J000001"  # valid, but its key is taken: found after rows 0-3 were inserted
    conflict = writer.post("/v1/jobs", json=rows, headers=app_headers)
    assert conflict.status_code == 409
    assert checksum(fresh) == before
    rows.pop()
    created = writer.post("/v1/jobs", json=rows, headers=app_headers)
    assert created.status_code == 201 and len(created.json()["data"]) == 4
    assert all(stored(fresh, r["job_number"]) for r in rows)
    too_many = [{**NEW_JOB, "job_number": f"J93{i:04d}"} for i in range(101)]
    after = checksum(fresh)
    assert writer.post("/v1/jobs", json=too_many, headers=app_headers).status_code == 413
    assert checksum(fresh) == after


def test_bulk_partial_commits_the_good_rows(writer: Client, fresh: sa.Engine, app_headers: dict[str, str]) -> None:
    rows = [
        {**NEW_JOB, "job_number": "J920001"},
        {**NEW_JOB, "job_number": "J920002", "status": "cancelled"},
        {**NEW_JOB, "job_number": "J000001"},
        {**NEW_JOB, "job_number": "J920004", "rush": False},
    ]
    response = writer.post("/v1/jobs?partial=true", json=rows, headers=app_headers)
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == [201, 422, 409, 201]
    assert stored(fresh, "J920001") == ("J920001   ", *NEW_JOB_STORED[1:])
    assert column(fresh, "J920004", "RUSHFL") == "N"
    assert stored(fresh, "J920002") is None


# -- update, concurrency, delete ------------------------------------------------------------------------


def test_patch_touches_only_the_named_columns(writer: Client, fresh: sa.Engine, app_headers: dict[str, str]) -> None:
    assert writer.get("/v1/jobs/J000002", headers=app_headers).status_code == 200  # a client reads the row ...
    # ... meanwhile the legacy system changes another column.
    execute(fresh, "UPDATE {JOBMAST} SET {NOTES} = 'changed by the old system' WHERE {JOBNO} = 'J000002   '")
    untouched = [c for c in JOBMAST_COLUMNS if c not in ("RUSHFL", "QTY")]
    before = stored(fresh, "J000002")
    assert before is not None
    response = writer.patch("/v1/jobs/J000002", json={"rush": False, "quantity": 7.25}, headers=app_headers)
    assert response.status_code == 200, response.text
    assert response.json()["notes"] == "changed by the old system"
    after = stored(fresh, "J000002")
    assert after is not None and (after[7], after[8]) == ("N", 725)
    assert [after[JOBMAST_COLUMNS.index(c)] for c in untouched] == [before[JOBMAST_COLUMNS.index(c)] for c in untouched]


def test_if_match_prevents_the_lost_update(writer: Client, fresh: sa.Engine, app_headers: dict[str, str]) -> None:
    etag = writer.get("/v1/jobs/J000003", headers=app_headers).headers["etag"]
    first = writer.patch("/v1/jobs/J000003", json={"notes": "first"}, headers={**app_headers, "If-Match": etag})
    assert first.status_code == 200 and first.headers["etag"] != etag
    before = checksum(fresh)
    second = writer.patch("/v1/jobs/J000003", json={"notes": "second"}, headers={**app_headers, "If-Match": etag})
    assert second.status_code == 412
    assert writer.delete("/v1/jobs/J000003", headers={**app_headers, "If-Match": etag}).status_code == 412
    assert checksum(fresh) == before
    assert column(fresh, "J000003", "NOTES") == "first"
    # The legacy system's own change (outside the API) moves the ETag too.
    current = first.headers["etag"]
    execute(fresh, "UPDATE {JOBMAST} SET {QTY} = {QTY} + 1 WHERE {JOBNO} = 'J000003   '")
    late = writer.patch("/v1/jobs/J000003", json={"notes": "late"}, headers={**app_headers, "If-Match": current})
    assert late.status_code == 412


def test_if_match_race_lets_exactly_one_writer_win(
    writer: Client, fresh: sa.Engine, app_headers: dict[str, str]
) -> None:
    etag = writer.get("/v1/jobs/J000004", headers=app_headers).headers["etag"]

    def write(n: int) -> int:
        headers = {**app_headers, "If-Match": etag}
        return writer.patch("/v1/jobs/J000004", json={"notes": f"writer {n}"}, headers=headers).status_code

    statuses = parallel(8, write)
    assert sorted(statuses) == [200] + [412] * 7
    winner = statuses.index(200)
    assert column(fresh, "J000004", "NOTES") == f"writer {winner}"


def test_unconditional_race_loses_no_column(writer: Client, fresh: sa.Engine, app_headers: dict[str, str]) -> None:
    """Without If-Match, writers of different columns queue on the row lock: every change lands."""
    changes = [{"rush": True}, {"priority": True}, {"quantity": 3}, {"notes": "n"}, {"due_date": "2030-01-02"}]
    statuses = parallel(len(changes), lambda n: writer.patch("/v1/jobs/J000009", json=changes[n], headers=app_headers))
    assert [s.status_code for s in statuses] == [200] * len(changes), [s.text for s in statuses]
    row = stored(fresh, "J000009")
    assert row is not None and (row[7], row[9], row[8], row[10], row[6]) == ("Y", 1, 300, "n", 20300102)


def test_delete_is_the_mapped_soft_delete(writer: Client, fresh: sa.Engine, app_headers: dict[str, str]) -> None:
    etag = writer.get("/v1/jobs/J000006", headers=app_headers).headers["etag"]
    assert writer.delete("/v1/jobs/J000006", headers={**app_headers, "If-Match": etag}).status_code == 204
    assert writer.get("/v1/jobs/J000006", headers=app_headers).status_code == 404
    assert column(fresh, "J000006", "DELFLG") == "Y"  # still there, flagged as the old system does
    assert writer.delete("/v1/jobs/J000006", headers=app_headers).status_code == 404
    assert writer.patch("/v1/jobs/J000006", json={"rush": True}, headers=app_headers).status_code == 404


# -- idempotency ----------------------------------------------------------------------------------------


def _twenty_posts_one_key(client: Client, engine: sa.Engine, headers: dict[str, str]) -> None:
    key = {"Idempotency-Key": f"same-key-{uuid.uuid4()}"}
    body = {**NEW_JOB, "job_number": "J950000"}
    responses = parallel(20, lambda _n: client.post("/v1/jobs", json=body, headers={**headers, **key}))
    rows = execute(engine, "SELECT COUNT(*) FROM {JOBMAST} WHERE {JOBNO} = 'J950000   '")
    assert int(rows[0][0]) == 1  # sqliteodbc answers COUNT(*) as text
    assert {r.status_code for r in responses} == {201}, {r.text for r in responses}
    assert len({r.content for r in responses}) == 1  # the duplicates waited for the first answer
    replayed = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == 19


def test_twenty_parallel_posts_with_one_key_create_one_row(
    writer: Client, fresh: sa.Engine, app_headers: dict[str, str]
) -> None:
    _twenty_posts_one_key(writer, fresh, app_headers)


@pytest.fixture
def pg_state_url() -> Iterator[str]:
    """The state store on PostgreSQL, in a schema of its own that is dropped afterwards."""
    require_port(sa.make_url(PG_STATE_URL), 5432)
    schema = f"bh_state_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_STATE_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        # libpq's options: every connection of the state store works in that schema.
        yield f"{PG_STATE_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def test_twenty_parallel_posts_with_the_state_store_on_postgresql(
    writes_url: str,
    fresh: sa.Engine,
    tmp_path: Path,
    pg_state_url: str,
    app_headers: dict[str, str],
    admin: dict[str, str],
) -> None:
    for client in _client(writes_url, tmp_path, state_url=pg_state_url):
        _twenty_posts_one_key(client, fresh, app_headers)
        held = held_job(fresh)
        headers = {**app_headers, "Idempotency-Key": f"release-{held}"}
        first = client.post(f"/v1/jobs/{held}/actions/release_sql", headers=headers)
        assert first.status_code == 200, first.text
        replay = client.post(f"/v1/jobs/{held}/actions/release_sql", headers=headers)
        assert replay.content == first.content and replay.headers["idempotent-replayed"] == "true"
        audit = client.get(f"/admin/audit?key={held}", headers=admin)
        assert [e["action"] for e in audit.json()["data"]] == ["action:release_sql"]
    probe = sa.create_engine(pg_state_url)
    try:
        with probe.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM idempotency_keys").scalar() == 2
    finally:
        probe.dispose()


def test_a_postgresql_state_store_failing_after_the_commit_never_runs_the_write_twice(
    writes_url: str, fresh: sa.Engine, tmp_path: Path, pg_state_url: str, app_headers: dict[str, str]
) -> None:
    """The audit row and the stored answer fail (a real PostgreSQL error, raised by triggers) right after
    the legacy commit: the caller still gets the committed answer, and its retry never writes again."""
    held = held_job(fresh)
    headers = {**app_headers, "Idempotency-Key": f"release-{held}"}
    state = sa.create_engine(pg_state_url)
    failing = (
        "CREATE FUNCTION injected_failure() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ "
        "LANGUAGE plpgsql",
        "CREATE TRIGGER fail_audit BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION injected_failure()",
        "CREATE TRIGGER fail_answer BEFORE UPDATE ON idempotency_keys FOR EACH ROW "
        "WHEN (NEW.state = 'done') EXECUTE FUNCTION injected_failure()",
    )
    try:
        for client in _client(writes_url, tmp_path, state_url=pg_state_url):
            with state.begin() as conn:
                for statement in failing:
                    conn.exec_driver_sql(statement)
            first = client.post(f"/v1/jobs/{held}/actions/release_sql", headers=headers)
            assert first.status_code == 200, first.text
            assert first.json()["result"] == {"affected": 1} and column(fresh, held, "JSTAT") == "R"
            retry = client.post(f"/v1/jobs/{held}/actions/release_sql", headers=headers)
            # A second run would answer {"affected": 0}: the job is no longer on hold.
            assert retry.content == first.content and retry.headers["idempotent-replayed"] == "true"
            with state.begin() as conn:
                conn.exec_driver_sql("DROP FUNCTION injected_failure() CASCADE")
            assert client.post(f"/v1/jobs/{held}/actions/release_sql", headers=headers).content == first.content
        with state.connect() as conn:
            stored = conn.exec_driver_sql("SELECT state, body FROM idempotency_keys").all()
        assert [(row[0], bytes(row[1])) for row in stored] == [("done", first.content)]
    finally:
        state.dispose()


# -- actions --------------------------------------------------------------------------------------------


def test_declared_sql_action_releases_the_job(writer: Client, fresh: sa.Engine, app_headers: dict[str, str]) -> None:
    held = held_job(fresh)
    response = writer.post(f"/v1/jobs/{held}/actions/release_sql", headers=app_headers)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == {"affected": 1} and response.json()["data"]["status"] == "released"
    assert column(fresh, held, "JSTAT") == "R"


def test_failing_statement_inside_an_action_leaves_nothing_behind(
    writer: Client, fresh: sa.Engine, app_headers: dict[str, str]
) -> None:
    before = (checksum(fresh), checksum(fresh, "JOBOPS"))
    response = writer.post("/v1/jobs/J000007/actions/release_and_copy", headers=app_headers)
    assert response.status_code == 409, response.text
    assert_safe_problem(response, "unique", "duplicate")
    assert (checksum(fresh), checksum(fresh, "JOBOPS")) == before


@pytest.fixture
def procedures(fresh: sa.Engine) -> sa.Engine:
    if fresh.dialect.name not in PROCEDURES:
        pytest.skip(f"{fresh.dialect.name} has no stored procedures (its actions are declared SQL)")
    return fresh


def test_stored_procedure_action_releases_the_job(
    writer: Client, procedures: sa.Engine, app_headers: dict[str, str]
) -> None:
    held = held_job(procedures)
    before = stored(procedures, held)
    headers = {**app_headers, "Idempotency-Key": f"release-{held}"}
    response = writer.post(f"/v1/jobs/{held}/actions/release_proc", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"]["status"] == "released" and body["data"]["job_number"] == held
    if procedures.dialect.name == "mysql":  # its procedure ends with a SELECT: the result set comes back
        assert body["result"] == {"rows": [{"released": 1}]}
    after = stored(procedures, held)
    assert before is not None and after is not None
    assert after == (*before[:3], "R", *before[4:])
    replay = writer.post(f"/v1/jobs/{held}/actions/release_proc", headers=headers)
    assert replay.content == response.content and replay.headers["idempotent-replayed"] == "true"
    # Released already: the procedure's WHERE finds nothing to do, and says so.
    again = writer.post(f"/v1/jobs/{held}/actions/release_proc", headers=app_headers)
    assert again.status_code == 200 and again.json()["data"]["status"] == "released"


def test_failing_stored_procedure_leaves_nothing_changed(
    writer: Client, procedures: sa.Engine, app_headers: dict[str, str]
) -> None:
    held = held_job(procedures)
    before = checksum(procedures)
    response = writer.post(f"/v1/jobs/{held}/actions/release_proc_fails", headers=app_headers)
    assert response.status_code == 409, response.text
    assert_safe_problem(response, "incomplete", "45000", "P0001", "50001")
    assert checksum(procedures) == before
    assert column(procedures, held, "JSTAT") == "H"
    # The connection went back to the pool clean: the next write on it works.
    assert writer.post(f"/v1/jobs/{held}/actions/release_proc", headers=app_headers).status_code == 200
    assert column(procedures, held, "JSTAT") == "R"


def test_audit_holds_before_and_after(
    writer: Client, fresh: sa.Engine, app_headers: dict[str, str], admin: dict[str, str]
) -> None:
    writer.post("/v1/jobs", json=NEW_JOB, headers={**app_headers, "X-Request-ID": "req-create"})
    writer.patch("/v1/jobs/J900001", json={"status": "released", "rush": False}, headers=app_headers)
    writer.delete("/v1/jobs/J900001", headers=app_headers)
    entries = writer.get("/admin/audit?resource=jobs&key=J900001", headers=admin).json()["data"]
    assert [e["action"] for e in entries] == ["delete", "update", "create"]
    delete, update, create = entries
    assert update["before"] == {"status": "on_hold", "rush": True}
    assert update["after"] == {"status": "released", "rush": False}
    assert create["after"]["quantity"] == 12.5 and create["request_id"] == "req-create"
    assert delete["before"]["job_number"] == "J900001" and delete["after"] is None


# -- fractional seconds ---------------------------------------------------------------------------------

STAMPS = """
      stamps:
        table: BH_STAMPS
        key: id
        scopes: {read: jobs:read, write: jobs:write}
        writable: true
        fields:
          id: {column: ID, type: integer, required: true}
          at: {column: T, type: datetime}
          note: {column: NOTE, type: string, nullable: true}
"""
TIMESTAMP_TYPES = {"mysql": "DATETIME(6)", "postgresql": "TIMESTAMP(6)", "mssql": "DATETIME2(6)"}


def test_compare_and_set_on_a_fractional_datetime(
    writes_url: str, fresh: sa.Engine, tmp_path: Path, app_headers: dict[str, str]
) -> None:
    """A row whose DATETIME has microseconds can be changed (MariaDB's driver drops bound fractions)."""
    q = _q(fresh)
    column_type = TIMESTAMP_TYPES.get(fresh.dialect.name, "TIMESTAMP")
    with fresh.begin() as conn:
        if sa.inspect(conn).has_table("BH_STAMPS"):
            conn.exec_driver_sql(f"DROP TABLE {q('BH_STAMPS')}")
        conn.exec_driver_sql(f"CREATE TABLE {q('BH_STAMPS')} ({q('ID')} INTEGER, {q('T')} {column_type}, "
                             f"{q('NOTE')} VARCHAR(20))")  # fmt: skip
        conn.exec_driver_sql(f"INSERT INTO {q('BH_STAMPS')} VALUES (1, '2026-01-02 03:04:05.123456', 'old')")
    try:
        for client in _client(writes_url, tmp_path, resources=STAMPS):
            etag = client.get("/v1/stamps/1", headers=app_headers).headers["etag"]
            response = client.patch("/v1/stamps/1", json={"note": "new"}, headers={**app_headers, "If-Match": etag})
            assert response.status_code == 200, response.text
            created = client.post(
                "/v1/stamps", json={"id": 2, "at": "2026-01-02T03:04:05.654321Z", "note": "x"}, headers=app_headers
            )
            assert created.status_code == 201, created.text
        with fresh.connect() as conn:
            rows = conn.exec_driver_sql(f"SELECT {q('NOTE')}, {q('T')} FROM {q('BH_STAMPS')} ORDER BY 1").all()
        assert [(r[0], str(r[1])[-6:]) for r in rows] == [("new", "123456"), ("x", "654321")]
    finally:
        with fresh.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE {q('BH_STAMPS')}")


BINS = """
      bins:
        table: STKBAL
        key: [item_number, warehouse]
        scopes: {read: stock:read, write: stock:write}
        writable: true
        fields:
          item_number: {column: ITEMNO, type: string, transform: trim, length: 15}
          warehouse: {column: WHSE, type: string, transform: trim, length: 3}
          on_hand: {column: ONHAND, type: decimal, scale: 3}
          allocated: {column: ALLOC, type: decimal, scale: 3}
          counted_on: {column: CNTDT, type: date, transform: "mm/dd/yyyy", null_if: [""]}
"""


def test_parallel_inserts_of_one_key_on_a_table_without_unique_index_create_one_row(
    writes_url: str, fresh: sa.Engine, tmp_path: Path, token: TokenFactory
) -> None:
    # STKBAL has no primary key and no unique index: only the gateway's own check stands
    # between twelve simultaneous creates of one new bin and twelve copies of it.
    headers = {"Authorization": f"Bearer {token('stock:read', 'stock:write')}"}
    body = {"item_number": "RACE-00001", "warehouse": "W99", "on_hand": 1.5, "allocated": 0}
    q = _q(fresh)
    try:
        with TestClient(create_app(mapping_for(writes_url, tmp_path, resources=BINS))) as client:
            statuses = parallel(12, lambda _n: client.post("/v1/bins", json=body, headers=headers).status_code)
        ((count,),) = execute(fresh, f"SELECT COUNT(*) FROM {q('STKBAL')} WHERE {q('WHSE')} = 'W99'")
        assert int(count) == 1  # sqliteodbc reports an aggregate as text
        assert sorted(statuses) == [201] + [409] * 11
    finally:
        with fresh.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {q('STKBAL')} WHERE {q('WHSE')} = 'W99'"))
