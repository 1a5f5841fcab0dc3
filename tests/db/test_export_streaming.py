"""Exports stream in flat memory on every backend, filtered or not, through each driver's real behaviour.

Drivers buffer in their own ways: psqlODBC reads a whole result before the first
row unless ``UseDeclareFetch`` is on; sqliteodbc does so whenever the statement
has a bound parameter; MariaDB Connector/ODBC before 3.1.17 always does. A
filtered export (``?status=complete`` binds a value) of 150k wide rows through a
real server (uvicorn in this process, read over HTTP) must not grow the
process's peak RSS by more than a fraction of what holding the result would
take. The table is generated once per backend and kept between sessions.
"""

from __future__ import annotations

import re
import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from db_backends import BIG_RESOURCE, BIG_ROWS, fill_big_table, mapping_for
from litestar.testing import TestClient

from gateway import create_app
from legacy_adapters.database import Database
from legacy_adapters.mapping import Mapping
from legacy_adapters.query.resource import bind_version
from legacy_adapters.reader import Reader, ReadQuery
from tests.live_server import live_server

NDJSON = {"Accept": "application/x-ndjson"}
QUERY = "/v1/jobs?status[in]=on_hold,released&customer_id[like]=C00*&notes[isnull]=false&fields=job_number,notes"


def test_filtered_export_sends_no_parameters_and_matches_native(
    backend_url: str, db_client: TestClient[Any], client: TestClient[Any], admin: dict[str, str]
) -> None:
    engine = db_client.app.state["ctx"].reader.database.export_engine
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        exported = db_client.get(QUERY, headers={**admin, **NDJSON})
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    native = client.get(QUERY, headers={**admin, **NDJSON})
    assert exported.status_code == native.status_code == 200
    assert exported.text == native.text and exported.text.count("\n") > 5
    selects = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]
    assert selects, "the export ran no SELECT on the export pool"
    if sa.make_url(backend_url).get_backend_name() == "sqlite" and "pyodbc" in backend_url:
        assert all(not p for _, p in selects), "sqliteodbc would buffer a parameterised statement"
        assert all("'H'" in s and "'R'" in s for s, _ in selects)  # the values, quoted inline


def test_export_in_batches_gives_every_row_once_in_order(db_mapping: Mapping, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyset batches (what a buffering driver gets) over a sort with ties: nothing lost, nothing twice."""
    database = Database(db_mapping.database)
    try:
        reader = Reader(database)
        operations = bind_version(db_mapping, "v1")["operations"]
        fields = tuple(operations.fields[n] for n in ("job_number", "sequence", "work_center"))
        query = ReadQuery(operations, fields, sort=((operations.fields["work_center"], True),))
        monkeypatch.setattr(database.backend, "buffers_results", False)
        streamed = list(reader.stream(query))
        monkeypatch.setattr(database.backend, "buffers_results", True)
        batched = list(reader.stream(query, batch_size=97))  # many batch boundaries, ties across them
        assert batched == streamed
        assert len(streamed) > 97 * 10
        assert len({(r["job_number"], r["sequence"]) for r in batched}) == len(batched)
    finally:
        database.dispose()


PAGED = "/v1/jobs?status[in]=on_hold,released,complete&sort=notes,-due_date&fields=job_number,notes,due_date,status"
"""A filter (bound values), NULLs in the first sort column (NOTES), ties in both sort columns."""


def _export_and_its_selects(client: TestClient[Any], url: str, admin: dict[str, str]) -> tuple[Any, list[str]]:
    """The NDJSON export of ``url`` and the SELECTs it sent on the export pool."""
    engine = client.app.state["ctx"].reader.database.export_engine
    selects: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.get(url, headers={**admin, **NDJSON})
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return response, selects


def test_keyset_pages_larger_than_a_batch_give_every_row_once_in_order(
    db_client: TestClient[Any], admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A buffering driver's export reads keyset pages of ``page_rows`` rows, handed on in export batches.

    Against the same backend's export as one statement: the same rows in the same order, each
    once, from one keyset statement per page (not per batch), in batches no larger than the export's.
    """
    import gateway.resources

    reader = db_client.app.state["ctx"].reader
    database = reader.database
    monkeypatch.setattr(database.backend, "buffers_results", False)
    whole = db_client.get(PAGED, headers={**admin, **NDJSON})
    assert whole.status_code == 200
    lines = whole.text.splitlines()
    assert any('"notes":null' in line for line in lines) and len(lines) > 250 * 3

    monkeypatch.setattr(database.backend, "buffers_results", True)
    monkeypatch.setattr(database.backend, "page_rows", 250)
    monkeypatch.setattr(gateway.resources, "BATCH_ROWS", 97)  # pages of 250 cut into 97, 97, 56
    paged, selects = _export_and_its_selects(db_client, PAGED, admin)
    assert paged.status_code == 200
    assert paged.text == whole.text
    keys = [msgspec.json.decode(line)["job_number"] for line in paged.text.splitlines()]
    assert len(set(keys)) == len(keys)
    # A first page of one batch (the first byte waits for no more), then pages of 250; the last one short.
    assert len(selects) == 1 + (len(lines) - 97) // 250 + 1

    jobs = bind_version(db_client.app.state["ctx"].mapping, "v1")["jobs"]
    query = ReadQuery(jobs, (jobs.fields["job_number"], jobs.fields["notes"]), sort=((jobs.fields["notes"], False),))
    sizes = [len(batch) for batch in reader.stream_batches(query, batch_size=97)]
    assert max(sizes) == 97 and 56 in sizes  # each page in slices of the batch size
    assert sum(sizes) == len({row["job_number"] for row in reader.stream(query, batch_size=97)})


@pytest.mark.parametrize("buffers", [False, True], ids=["one statement", "keyset pages"])
@pytest.mark.parametrize("limit", [1, 96, 97, 300])
def test_an_export_with_a_limit_gives_the_first_rows_of_the_whole_export(
    db_client: TestClient[Any], admin: dict[str, str], monkeypatch: pytest.MonkeyPatch, buffers: bool, limit: int
) -> None:
    """``limit`` cuts the export at that row on either read path, across batch and page edges, ties included."""
    import gateway.resources

    database = db_client.app.state["ctx"].reader.database
    whole = db_client.get(PAGED, headers={**admin, **NDJSON}).text.splitlines()
    assert len(whole) > 300
    monkeypatch.setattr(database.backend, "buffers_results", buffers)
    monkeypatch.setattr(database.backend, "page_rows", 250)
    monkeypatch.setattr(gateway.resources, "BATCH_ROWS", 97)
    capped, selects = _export_and_its_selects(db_client, f"{PAGED}&limit={limit}", admin)
    assert capped.status_code == 200
    assert capped.text.splitlines() == whole[:limit]
    # The cap is in the SQL as well: the database is not asked for rows the export would drop.
    assert selects and len(selects) <= (1 if not buffers else 2 + limit // 250)
    assert all(re.search(r"\b(LIMIT|TOP|FETCH)\b", s, re.IGNORECASE) for s in selects)


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as clear:  # "5" resets VmHWM to the current RSS (Linux 4.0+)
        clear.write("5")


@pytest.fixture(scope="session")
def big_export_url(backend_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = sa.make_url(backend_url)
    if url.get_backend_name() == "sqlite":
        # A file of its own: the session's demo database is shared read-only with other tests
        # (introspection lists its tables), so the big table must not land in it.
        url = url.set(database=str(tmp_path_factory.mktemp("big-export") / "export.db"))
    own = url.render_as_string(hide_password=False)
    fill_big_table(own)
    return own


@pytest.fixture
def big_server(big_export_url: str, tmp_path: Path) -> Iterator[Any]:
    mapping = mapping_for(big_export_url, tmp_path, resources=BIG_RESOURCE)
    with live_server(create_app(mapping)) as server:
        yield server


def test_filtered_export_of_150k_rows_streams_in_flat_memory(big_server: Any) -> None:
    url = f"{big_server.base}/v1/export_rows?status=complete"
    # Warm up: pools, compiled statements, driver buffers, so the peak measures the export alone.
    with httpx.stream("GET", f"{url}&row_id[lt]=5000", headers=NDJSON, timeout=60) as response:
        assert response.status_code == 200, response.read()
        assert sum(1 for line in response.iter_lines() if line) == 2499
    _reset_peak_rss()
    baseline = _peak_rss_mb()
    rows = 0
    with httpx.stream("GET", url, headers=NDJSON, timeout=300) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                rows += 1
    growth = _peak_rss_mb() - baseline
    assert rows == BIG_ROWS // 2
    # The matching rows hold ~16 MB of text as the driver sees it (more as Python objects); a stream
    # holds a few batches. 8 MB leaves room for allocator noise and nothing like the result.
    assert growth < 8, f"peak RSS grew {growth:.1f} MB while streaming {rows} filtered rows"


def _open_paused_export(port: int, path: str) -> socket.socket:
    """A client that asks for an export, then reads almost nothing: a small receive window, one read."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)  # before connect: the window offered
    client.settimeout(60)
    client.connect(("127.0.0.1", port))
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/x-ndjson\r\n\r\n".encode())
    first = client.recv(16 * 1024)
    assert first.startswith(b"HTTP/1.1 200"), first[:200]
    return client


@pytest.mark.parametrize("query", ["", "?status=complete"])
def test_a_paused_export_holds_a_few_batches_not_the_result(big_server: Any, query: str) -> None:
    """Rows are pulled as the client takes them: nothing between the driver and the socket holds the result.

    A client that stops reading after its first packet makes the server's sends wait (TCP flow
    control); a streaming export then stops fetching a few batches (and the kernel's socket
    buffers) later. Anything that collects the result first (every row in a list, a buffered
    response, a middleware reading the body) has all of it in Python objects by then: 150k rows
    of ~200 bytes are tens of MB as driver rows, dicts or bytes. ``tracemalloc`` counts what
    Python allocated while the export ran (a driver's own C buffers are the RSS test's above).
    """
    tracemalloc.start()
    try:
        client = _open_paused_export(big_server.port, f"/v1/export_rows{query}")
        try:
            # Let the server run ahead as far as flow control allows, until its memory stops growing.
            settled, previous = 0, -1
            for _ in range(150):
                time.sleep(0.2)
                current, _ = tracemalloc.get_traced_memory()
                settled = settled + 1 if abs(current - previous) < 256 * 1024 else 0
                previous = current
                if settled >= 5:
                    break
            _, peak = tracemalloc.get_traced_memory()
        finally:
            client.close()
    finally:
        tracemalloc.stop()
    # In flight at once: the batch read ahead, the one being decoded, the chunk made ahead and the one
    # being sent, of 1,000 rows each (gateway.export.BATCH_ROWS): ~2 MB of these rows measured here.
    assert peak < 6 * 1024 * 1024, f"{peak / 1e6:.1f} MB of Python objects while the client read one packet"
    # The export ends (its slot and connection go back) once the client is gone.
    deadline = time.monotonic() + 60
    while big_server.ctx.exports.running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert big_server.ctx.exports.running == 0
