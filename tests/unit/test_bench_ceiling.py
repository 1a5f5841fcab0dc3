"""bench/ceiling_app.py: the ceiling answers get and list with the floor's bodies, from the floor's SQL.

A small generated demo database (its dirty rows included; its complete jobs share due dates,
so the order's tie-break on the key shows), both apps driven in-process
through ASGI; the driver is pyodbc + sqliteodbc when installed, as in the bench, else
Python's sqlite3.
"""

# ruff: noqa: RUF001, RUF003 - the report writes ratios with the × sign

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import ceiling_app, data, floor_app
from bench.load import Result
from bench.report import Cell, ceiling_line
from legacy_adapters.demo import create_demo_database


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    path = tmp_path_factory.mktemp("ceiling") / "jobs.db"
    create_demo_database(path, rows=400)
    backend = "sqlite+pyodbc" if shutil.which("odbcinst") and _has_sqlite3_driver() else "sqlite"
    yield f"{backend}:///{path}", path


def _has_sqlite3_driver() -> bool:
    import subprocess

    return subprocess.run(["odbcinst", "-q", "-d", "-n", "SQLite3"], capture_output=True, check=False).returncode == 0


@pytest.fixture
def env(database: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> str:
    url, _ = database
    monkeypatch.setenv("BENCH_DB_URL", url)
    monkeypatch.setenv("BENCH_JWT_SECRET", data.JWT_SECRET)
    monkeypatch.setenv("BENCH_FLOOR_MODE", "loop")
    return url


@asynccontextmanager
async def _ceiling() -> AsyncIterator[httpx.AsyncClient]:
    """The ceiling with its lifespan run, as uvicorn runs it."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(ceiling_app.app({"type": "lifespan"}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ceiling_app.app), base_url="http://t") as c:
            yield c
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task


def _keys(path: Path) -> tuple[list[str], list[str]]:
    """Some visible job keys, and some soft-deleted ones."""
    with sqlite3.connect(path) as db:
        visible = [r[0].rstrip() for r in db.execute("SELECT JOBNO FROM JOBMAST WHERE DELFLG <> 'Y' LIMIT 40")]
        deleted = [r[0].rstrip() for r in db.execute("SELECT JOBNO FROM JOBMAST WHERE DELFLG = 'Y' LIMIT 3")]
    return visible, deleted


def test_the_ceiling_answers_with_the_floors_bodies(env: str, database: tuple[str, Path]) -> None:
    visible, deleted = _keys(database[1])
    assert deleted, "the demo database has soft-deleted jobs"
    headers = {"Authorization": f"Bearer {data.mint()}"}
    statuses = ("on_hold", "released", "planned", "complete")
    paths = [f"/v1/jobs/{k}" for k in visible]
    paths += [f"/v1/jobs?status={s}&sort=due_date&limit={n}" for s in statuses for n in (1, 2, 100)]

    async def run() -> None:
        floor = floor_app.create_app()
        transport = httpx.ASGITransport(app=floor)
        async with _ceiling() as ceiling, httpx.AsyncClient(transport=transport, base_url="http://t") as f:
            for path in paths:
                ours, theirs = await ceiling.get(path, headers=headers), await f.get(path, headers=headers)
                assert (ours.status_code, ours.content) == (200, theirs.content), path
            # Every status has more than 2 rows: those pages are cut, and say where the next begins.
            pages = [(await ceiling.get(p, headers=headers)).json() for p in paths if p.endswith("limit=2")]
            assert [(len(p["data"]), bool(p["next_cursor"])) for p in pages] == [(2, True)] * 4
            for key in deleted:  # soft-deleted jobs are not found, as in the floor
                assert (await ceiling.get(f"/v1/jobs/{key}", headers=headers)).status_code == 404
                assert (await f.get(f"/v1/jobs/{key}", headers=headers)).status_code == 404

    asyncio.run(run())


def test_the_ceiling_refuses_what_it_does_not_answer(env: str) -> None:
    headers = {"Authorization": f"Bearer {data.mint()}"}

    async def run() -> None:
        async with _ceiling() as c:
            assert (await c.get("/v1/jobs/J000000001")).status_code == 401
            bad = await c.get("/v1/jobs/J000000001", headers={"Authorization": "Bearer not-a-token"})
            assert (bad.status_code, bad.json()["detail"]) == (401, "invalid token")
            for query in ("status=lost&sort=due_date", "status=on_hold&sort=due_date&limit=x", "customer_id=C1"):
                assert (await c.get(f"/v1/jobs?{query}", headers=headers)).status_code == 400, query
            assert (await c.get("/v1/items", headers=headers)).status_code == 404

    asyncio.run(run())


def test_the_ceiling_sends_the_floors_sql(env: str) -> None:
    floor = floor_app._Floor(env, data.JWT_SECRET, "bridgehead-demo", "bridgehead")
    try:
        dialect = floor.engine.dialect
        statement, limit = floor._list_statement({"status": "on_hold", "sort": "due_date", "limit": "100"})
        assert str(floor_app._GET_ONE.compile(dialect=dialect)) == ceiling_app.GET_SQL
        assert str(statement.limit(limit + 1).compile(dialect=dialect)) == ceiling_app.LIST_SQL
    finally:
        floor.engine.dispose()


def _cell(rps: float, cpu_us: float) -> Cell:
    cell = Cell()
    cell.results.append(Result(rps, 5.0, 20.0, int(rps * 4), 0))
    cell.cpu_us.append(cpu_us)
    return cell


def test_the_report_line_gives_the_ceiling_against_sandman2_in_req_s_and_cpu() -> None:
    cells = {
        ("list_100", "ceiling"): _cell(600, 1_400),
        ("list_100", "sandman2"): _cell(300, 2_800),
        ("list_100", "bridgehead"): _cell(450, 1_750),
    }
    line = " ".join(ceiling_line(cells))
    assert "list of 100 2.00× sandman2 (Bridgehead 1.50×; the ceiling is 1.33× Bridgehead)" in line
    assert "in CPU per request 2.00× sandman2's (1,400 vs 2,800 µs; Bridgehead 1,750 µs)" in line
    assert " get " not in line  # the ceiling ran no get here
    del cells[("list_100", "ceiling")]
    assert ceiling_line(cells) == []
