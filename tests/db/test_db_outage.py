"""Production behaviour on a real server: stuck statements, a database that goes away and comes back.

PostgreSQL through psqlODBC (the issue's bar); the statement timeout is also
checked on MariaDB and SQLite over ODBC. The outage is made with a loopback TCP
proxy between pyodbc and the shared server, so the server itself keeps running
for everything else.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from pathlib import Path

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from db_backends import (
    BIG_RESOURCE,
    JWT_SECRET,
    MARIADB_URL,
    PG_URL,
    fill_big_table,
    mapping_for,
    portable_mapping_text,
    prepared_url,
    require_driver,
)
from litestar.testing import TestClient
from tcp_proxy import TcpProxy

from gateway import create_app
from legacy_adapters.database import Database
from legacy_adapters.exceptions import DatabaseUnavailable, StatementTimeout
from legacy_adapters.mapping import load_mapping
from legacy_adapters.mapping.model import DatabaseConfig
from tests.live_server import live_server

pytestmark = pytest.mark.odbc
NDJSON = {"Accept": "application/x-ndjson"}

SLEEP = {
    "postgresql-odbc": "SELECT count(*) FROM pg_sleep(3)",
    "mariadb-odbc": "SELECT SLEEP(3)",
    "sqlite-odbc": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
}


@pytest.fixture(scope="module")
def pg_url(demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The loaded PostgreSQL database, shared with the API tests."""
    return prepared_url("postgresql-odbc", demo_db_path, tmp_path_factory)


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy(sa.make_url(PG_URL).port or 5432)
    yield proxy
    proxy.close()


@pytest.mark.parametrize("case_id", ["postgresql-odbc", "mariadb-odbc", "sqlite-odbc"])
def test_statement_timeout_cancels(case_id: str, demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    url = prepared_url(case_id, demo_db_path, tmp_path_factory)
    database = Database(DatabaseConfig(url=url, statement_timeout_s=1, pool_size=1))
    try:
        started = time.monotonic()
        with pytest.raises(StatementTimeout):
            database.scalar(sa.text(SLEEP[case_id]))
        assert time.monotonic() - started < 2.5
        # The same (single) pooled connection is healthy afterwards, and the timeout still holds.
        assert int(database.scalar(sa.text("SELECT 1"))) == 1  # sqliteodbc answers text
        with pytest.raises(StatementTimeout):
            database.scalar(sa.text(SLEEP[case_id]))
    finally:
        database.dispose()


def test_stream_is_not_bounded_by_the_statement_timeout(pg_url: str) -> None:
    database = Database(DatabaseConfig(url=pg_url, statement_timeout_s=1, pool_size=1))
    try:
        rows = list(database.stream(sa.text("SELECT n FROM generate_series(1, 3) n, pg_sleep(1.5)")))
        assert [r[0] for r in rows] == [1, 2, 3]
        # Restored when the connection went back to the pool.
        with pytest.raises(StatementTimeout):
            database.scalar(sa.text("SELECT count(*) FROM pg_sleep(1.5)"))
    finally:
        database.dispose()


def test_stuck_request_is_504_and_cancelled_on_the_server(pg_url: str, tmp_path: Path, admin: dict[str, str]) -> None:
    slow = portable_mapping_text(pg_url).replace(
        "where: \"{DELFLG} <> 'Y'\"\n        scopes: {read: jobs:read, write: jobs:write}",
        "where: \"{DELFLG} <> 'Y' AND (SELECT count(*) FROM pg_sleep(1.5)) = 1\"\n"
        "        scopes: {read: jobs:read, write: jobs:write}",
        1,
    )
    assert "pg_sleep" in slow
    path = tmp_path / "slow.yaml"
    path.write_text(slow.replace("statement_timeout_s: 5", "statement_timeout_s: 1"), encoding="utf-8")
    mapping = load_mapping(path, {"BRIDGEHEAD_JWT_SECRET": JWT_SECRET, "BRIDGEHEAD_DB_URL": pg_url})
    watcher = Database(DatabaseConfig(url=pg_url))
    with TestClient(create_app(mapping)) as client:
        started = time.monotonic()
        response = client.get("/v1/jobs?limit=5", headers=admin)
        assert response.status_code == 504, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 504
        assert "pg_sleep" not in response.text
        assert time.monotonic() - started < 3
        still_running = watcher.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE '%pg_sleep(1.5)%' AND pid <> pg_backend_pid()"
            )
        )
        assert still_running == 0
        # An export is not bound by the statement timeout: it waits the sleep out.
        export = client.get("/v1/jobs?customer_id=C0042", headers={**admin, "Accept": "application/x-ndjson"})
        assert export.status_code == 200
        assert export.text.count("\n") >= 1
    watcher.dispose()


def test_outage_is_503_then_recovers_without_restart(
    pg_url: str, proxy: TcpProxy, tmp_path: Path, admin: dict[str, str]
) -> None:
    url = sa.make_url(pg_url).set(port=proxy.port).render_as_string(hide_password=False)
    mapping = mapping_for(url, tmp_path, connect_timeout_s=2, pool_size=2)
    with TestClient(create_app(mapping)) as client:
        for _ in range(3):  # warm the pool
            assert client.get("/v1/jobs/J000005", headers=admin).status_code == 200
        assert client.get("/health/ready").status_code == 200

        proxy.cut()
        for path in ("/v1/jobs/J000005", "/v1/jobs?limit=3", "/v1/customers?count=exact"):
            started = time.monotonic()
            response = client.get(path, headers=admin)
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert int(response.headers["retry-after"]) > 0
            assert response.json()["status"] == 503
            assert time.monotonic() - started < 5
        assert client.get("/health/ready").status_code == 503

        proxy.restore()
        response = client.get("/v1/jobs/J000005", headers=admin)
        assert response.status_code == 200, response.text
        assert client.get("/v1/jobs?limit=3", headers=admin).status_code == 200
        assert client.get("/health/ready").status_code == 200

        # A second outage in the same process behaves the same.
        proxy.cut()
        assert client.get("/v1/jobs?limit=3", headers=admin).status_code == 503
        proxy.restore()
        assert client.get("/v1/jobs?limit=3", headers=admin).status_code == 200


def test_unreachable_at_first_connect_is_unavailable(proxy: TcpProxy) -> None:
    proxy.cut()
    url = sa.make_url(PG_URL).set(port=proxy.port)
    database = Database(DatabaseConfig(url=url.render_as_string(hide_password=False), connect_timeout_s=2))
    try:
        with pytest.raises(DatabaseUnavailable):
            database.ping()
        proxy.restore()
        database.ping()
    finally:
        database.dispose()


def test_mariadb_unreachable_is_unavailable() -> None:
    require_driver("MariaDB Unicode")
    url = sa.make_url(MARIADB_URL).set(port=1)  # nothing listens on port 1
    database = Database(DatabaseConfig(url=url.render_as_string(hide_password=False), connect_timeout_s=2))
    with pytest.raises(DatabaseUnavailable):
        database.ping()
    database.dispose()


def test_sqlite_odbc_write_transaction_is_atomic(demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    url = prepared_url("sqlite-odbc", demo_db_path, tmp_path_factory)
    database = Database(DatabaseConfig(url=url, pool_size=1))
    try:
        before = database.scalar(sa.text("SELECT count(*) FROM JOBMAST WHERE JSTAT = 'Q'"))
        with pytest.raises(RuntimeError), database.transaction() as conn:  # type: ignore[attr-defined]
            conn.execute(sa.text("UPDATE JOBMAST SET JSTAT = 'Q' WHERE JOBNO = 'J000001   '"))
            raise RuntimeError("abort")
        assert database.scalar(sa.text("SELECT count(*) FROM JOBMAST WHERE JSTAT = 'Q'")) == before
    finally:
        database.dispose()


UPSTREAM_PORTS = {"postgresql-odbc": (PG_URL, 5432), "mariadb-odbc": (MARIADB_URL, 3306)}


@pytest.mark.parametrize("case_id", ["postgresql-odbc", "mariadb-odbc"])
def test_black_holed_database_answers_within_a_bound_and_recovers(
    case_id: str,
    demo_db_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database stops answering but no connection closes: every request still ends, promptly.

    Before, requests on pooled connections hung for as long as the outage lasted (the idle
    ping and the query wait on a socket that never answers; the server-side statement timeout
    cannot fire on a server that does not hear). Every idle connection is pinged here, so the
    ping itself meets the black hole too.
    """
    import legacy_adapters.database as database_module

    url = prepared_url(case_id, demo_db_path, tmp_path_factory)
    base_url, default_port = UPSTREAM_PORTS[case_id]
    proxy = TcpProxy(sa.make_url(base_url).port or default_port)
    proxied = sa.make_url(url).set(port=proxy.port).render_as_string(hide_password=False)
    mapping = mapping_for(proxied, tmp_path, statement_timeout_s=1, connect_timeout_s=1, pool_size=2)
    deadline = mapping.database.request_deadline_s
    monkeypatch.setattr(database_module, "PING_AFTER_IDLE_S", 0.0)
    paths = ("/v1/jobs/J000005", "/v1/jobs?limit=3", "/v1/customers?count=exact", "/health/ready")
    with TestClient(create_app(mapping)) as client:
        try:
            for path in paths:  # warm the pools
                assert client.get(path, headers=admin).status_code == 200

            proxy.black_hole()
            waiter = ThreadPoolExecutor(1)  # so a request that hangs fails the test instead of hanging it
            for path in (*paths, *paths):  # twice the pool: stuck workers and connections must not pile up
                started = time.monotonic()
                try:
                    response = waiter.submit(client.get, path, headers=admin).result(timeout=deadline + 10)
                except FuturesTimeout:
                    pytest.fail(f"{path} still had no answer {deadline + 10:.0f}s into the black hole")
                elapsed = time.monotonic() - started
                assert response.status_code in (503, 504), (path, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.json()["status"] == response.status_code
                # The deadline plus scheduling slack: an answer, not a wait for the outage to end.
                assert elapsed < deadline + 2, f"{path} took {elapsed:.1f}s during the black hole"

            proxy.restore()
            recovered = time.monotonic() + 30
            while time.monotonic() < recovered:
                statuses = [client.get(path, headers=admin).status_code for path in paths]
                if statuses == [200] * len(paths):
                    break
                time.sleep(0.5)
            assert statuses == [200] * len(paths), statuses
        finally:
            proxy.close()  # before the client stops: a request stuck on the proxy would hold it


def test_an_export_whose_database_goes_silent_is_cut_and_its_slot_returns(
    pg_url: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    """Mid-export, PostgreSQL stops answering: the export ends (broken, never as if complete) after the
    idle timeout instead of hanging its client, and its slot and connection return once the link does."""
    fill_big_table(pg_url)
    url = sa.make_url(pg_url).set(port=proxy.port).render_as_string(hide_password=False)
    mapping = mapping_for(url, tmp_path, resources=BIG_RESOURCE, export_pool_size=1)
    idle = 2.0
    mapping = msgspec.structs.replace(mapping, api=msgspec.structs.replace(mapping.api, export_idle_timeout_s=idle))
    with live_server(create_app(mapping)) as server:
        export = server.ctx.exports
        with httpx.stream("GET", f"{server.base}/v1/export_rows", headers=NDJSON, timeout=30) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(lines)
            proxy.black_hole()
            started = time.monotonic()
            with pytest.raises(httpx.RemoteProtocolError):  # the chunked body never ends properly
                for _ in lines:
                    pass
            assert time.monotonic() - started < idle + 8  # what the socket buffers held, then the cut
        assert export.running == 1  # the cursor is still stuck in the driver: the slot stays taken
        refused = httpx.get(f"{server.base}/v1/export_rows", headers=NDJSON, timeout=10)
        assert refused.status_code == 503 and refused.headers["retry-after"]
        proxy.restore()
        deadline = time.monotonic() + 30
        while export.running and time.monotonic() < deadline:
            time.sleep(0.2)
        assert export.running == 0
        assert server.ctx.reader.database.export_engine.pool.checkedout() == 0
        again = httpx.get(f"{server.base}/v1/export_rows?row_id[lt]=11", headers=NDJSON, timeout=30)
        assert again.status_code == 200 and len(again.text.splitlines()) == 10
