"""Bulk export: NDJSON and CSV carry every matching row, streamed in constant server memory."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from gateway import create_app
from gateway.cli import mint_token
from legacy_adapters.demo import DEMO_MAPPING_PATH, create_demo_database
from legacy_adapters.mapping import load_mapping
from tests.conftest import JWT_SECRET, demo_environ


def test_ndjson_export_has_every_matching_row(
    client: TestClient[Any], admin: dict[str, str], demo_db_path: Path
) -> None:
    response = client.get("/v1/jobs?status=complete", headers={**admin, "Accept": "application/x-ndjson"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = response.text.splitlines()
    with sqlite3.connect(demo_db_path) as conn:
        (expected,) = conn.execute("SELECT COUNT(*) FROM JOBMAST WHERE DELFLG <> 'Y' AND JSTAT = 'C'").fetchone()
    assert len(lines) == expected > 50  # more than one page: exports ignore the page size
    rows = [json.loads(line) for line in lines]
    assert {r["status"] for r in rows} == {"complete"}
    assert rows[0]["job_number"] < rows[-1]["job_number"]


def test_csv_export_is_rfc4180_with_header(client: TestClient[Any], admin: dict[str, str]) -> None:
    response = client.get(
        "/v1/jobs?fields=job_number,due_date,rush,quantity,notes&customer_id=C0001",
        headers={**admin, "Accept": "text/csv"},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == ["job_number", "due_date", "rush", "quantity", "notes"]
    json_rows = client.get(
        "/v1/jobs?fields=job_number,due_date,rush,quantity,notes&customer_id=C0001&limit=500", headers=admin
    ).json()["data"]
    assert len(table) - 1 == len(json_rows) > 0
    for line, row in zip(table[1:], json_rows, strict=True):
        assert line[0] == row["job_number"]
        assert line[1] == (row["due_date"] or "")
        assert line[2] == ("true" if row["rush"] else "false")
        assert float(line[3]) == row["quantity"]


def test_export_refuses_embed_and_paging(client: TestClient[Any], admin: dict[str, str]) -> None:
    ndjson = {**admin, "Accept": "application/x-ndjson"}
    assert client.get("/v1/jobs?embed=operations", headers=ndjson).status_code == 400
    refused = {"offset=10": ["offset"], "count=exact": ["count"], "cursor=x&count=exact": ["cursor", "count"]}
    for query, named in refused.items():
        response = client.get(f"/v1/jobs?{query}", headers=ndjson)
        assert response.status_code == 400, query
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["parameter"] for e in response.json()["errors"]] == named


@pytest.mark.parametrize("accept", ["application/x-ndjson", "text/csv"])
def test_export_with_a_limit_streams_the_first_rows_of_the_order(
    client: TestClient[Any], admin: dict[str, str], accept: str
) -> None:
    """``limit`` on an export is a cap, in the list's own order: never dropped, never a page of 50."""
    query = "status=complete&sort=-due_date,job_number&fields=job_number,due_date"
    page = client.get(f"/v1/jobs?{query}&limit=7", headers=admin).json()["data"]
    response = client.get(f"/v1/jobs?{query}&limit=7", headers={**admin, "Accept": accept})
    assert response.status_code == 200
    if accept == "text/csv":
        table = list(csv.reader(io.StringIO(response.text)))
        assert table[0] == ["job_number", "due_date"]
        numbers = [line[0] for line in table[1:]]
    else:
        numbers = [json.loads(line)["job_number"] for line in response.text.splitlines()]
    assert numbers == [row["job_number"] for row in page] and len(numbers) == 7
    # Past the rows there are, and at the page maximum: every matching row, no more.
    every = client.get(f"/v1/jobs?{query}", headers={**admin, "Accept": "application/x-ndjson"}).text.splitlines()
    capped = client.get(f"/v1/jobs?{query}&limit=500", headers={**admin, "Accept": "application/x-ndjson"})
    assert capped.text.splitlines() == every[:500]
    assert client.get(f"/v1/jobs?{query}&limit=0", headers={**admin, "Accept": accept}).status_code == 400


# -- constant memory, measured on a real server process --------------------------------------------------------------

EXPORT_ROWS = 200_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real `bridgehead serve` process over a database with more than 200k operations."""
    db = tmp_path_factory.mktemp("big") / "demo.db"
    create_demo_database(db, rows=EXPORT_ROWS // 4 + 1000)
    port = _free_port()
    env = {
        **os.environ,
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_DB_URL": f"sqlite:///{db}",
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{db.with_name('state.db')}",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "-c",
            str(DEMO_MAPPING_PATH),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        raise AssertionError(f"server did not start: {process.stderr.read().decode() if process.stderr else ''}")
    try:
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_export_of_200k_rows_streams_in_constant_memory(big_server: tuple[str, int]) -> None:
    base, pid = big_server
    auth = {
        "Authorization": "Bearer "
        + mint_token(
            JWT_SECRET,
            subject="export",
            scopes=["admin"],
            claims={},
            ttl_s=600,
            issuer="bridgehead-demo",
            audience="bridgehead",
        )
    }
    ndjson = {**auth, "Accept": "application/x-ndjson"}
    # Warm up: imports, pool and first queries, so the peak below measures the export alone.
    with httpx.stream("GET", f"{base}/v1/operations?job_number[like]=J00000*", headers=ndjson, timeout=60) as r:
        assert r.status_code == 200
        r.read()
    baseline = _peak_rss_mb(pid)
    rows = 0
    started = time.monotonic()
    with httpx.stream("GET", f"{base}/v1/operations", headers=ndjson, timeout=300) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                rows += 1
    elapsed = time.monotonic() - started
    growth = _peak_rss_mb(pid) - baseline
    assert rows >= EXPORT_ROWS
    # 200k decoded rows held at once would cost several hundred MB of Python objects; a stream
    # holds a few chunks. 40 MB leaves room for allocator noise and nothing more.
    assert growth < 40, f"server peak RSS grew {growth:.0f} MB while streaming {rows} rows"
    print(f"streamed {rows} rows in {elapsed:.1f}s, peak RSS growth {growth:.1f} MB")


def test_csv_cells_that_spreadsheets_would_run_are_quoted(writable_db: Path, admin: dict[str, str]) -> None:
    """OWASP CSV injection: a legacy note typed as ``=HYPERLINK(…)`` must open as text, not a formula."""
    notes = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "plain", "a=b"]
    with sqlite3.connect(writable_db) as db:
        for i, note in enumerate(notes):
            db.execute("UPDATE JOBMAST SET NOTES = ? WHERE JOBNO = ?", (note, f"J{i + 1:06d}".ljust(10)))
    with TestClient(create_app(load_mapping(DEMO_MAPPING_PATH, demo_environ(writable_db)))) as client:
        keys = ",".join(f"J{i + 1:06d}" for i in range(len(notes)))
        query = f"/v1/jobs?job_number[in]={keys}&fields=job_number,notes,quantity&sort=job_number"
        table = list(csv.reader(io.StringIO(client.get(query, headers={**admin, "Accept": "text/csv"}).text)))
        ndjson = client.get(query, headers={**admin, "Accept": "application/x-ndjson"}).text
    cells = [row[1] for row in table[1:]]
    assert cells == ["'" + n for n in notes[:6]] + notes[6:]
    assert all(not row[2].startswith("'") for row in table[1:])  # numbers are numbers, even negative ones
    assert "=HYPERLINK" in ndjson and "'=HYPERLINK" not in ndjson  # JSON consumers get the value as stored
