"""One JSON access-log line per request: id, route template, status, duration, subject, rows."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from litestar.testing import TestClient

from gateway.logging import configure_logging
from tests.ops.servers import demo_mapping_with, serving


def _requests(out: io.BytesIO) -> list[dict[str, Any]]:
    configure_logging("info", log_format="json", stream=io.BytesIO())  # closing the sink flushes it
    lines = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    return [line for line in lines if line.get("event") == "request"]


def test_each_request_logs_its_rows_once(client: TestClient[Any], admin: dict[str, str]) -> None:
    out = io.BytesIO()
    configure_logging("info", log_format="json", stream=out)
    asks = {
        "page": client.get("/v1/jobs?limit=5", headers={**admin, "X-Request-ID": "log-page"}),
        "one": client.get("/v1/jobs/J000001", headers={**admin, "X-Request-ID": "log-one"}),
        "export": client.get(
            "/v1/jobs?customer_id=C0001", headers={**admin, "Accept": "text/csv", "X-Request-ID": "log-export"}
        ),
        "missing": client.get("/v1/jobs/NOPE", headers={**admin, "X-Request-ID": "log-missing"}),
        "nowhere": client.get("/no/route", headers={"X-Request-ID": "log-nowhere"}),
    }
    lines = {line["request_id"]: line for line in _requests(out) if line["request_id"].startswith("log-")}
    assert len(lines) == len(asks)  # one line each, never two for a streamed answer
    exported = len(asks["export"].text.splitlines()) - 1  # less the header row
    expected = {"page": 5, "one": 1, "export": exported, "missing": 0, "nowhere": 0}
    for name, rows in expected.items():
        line = lines[f"log-{name}"]
        assert line["rows"] == rows, (name, line)
        assert line["status"] == asks[name].status_code
        assert isinstance(line["ms"], float) and line["ms"] >= 0
    assert lines["log-page"]["route"] == "/v1/jobs" and lines["log-one"]["route"] == "/v1/jobs/{key}"
    assert lines["log-one"]["subject"] == "admin" and lines["log-nowhere"]["subject"] is None
    assert exported > 0


def _drain_slowly(fd: int, into: list[bytes]) -> None:
    """Read a pipe in small bites, so that it fills up and the writers contend for it."""
    while chunk := os.read(fd, 1024):
        into.append(chunk)
        time.sleep(0.0005)


def test_workers_sharing_a_pipe_write_whole_lines_and_lose_none_at_a_graceful_stop(
    demo_db_path: Path, tmp_path: Path, admin: dict[str, str]
) -> None:
    # docker and journald give every worker the same pipe as stderr: the buffered lines of two
    # processes must not cut into each other there, and SIGTERM must not drop the last ones.
    mapping = demo_mapping_with(tmp_path)
    read, write = os.pipe()
    got: list[bytes] = []
    reader = threading.Thread(target=_drain_slowly, args=(read, got))
    reader.start()
    asked = [f"pipe-{n:04d}" for n in range(600)]
    try:
        with serving(mapping, demo_db_path, tmp_path / "state.db", workers=2, log_level="info", stderr=write) as (
            base,
            _,
        ):
            os.close(write)  # the server's processes hold it now; EOF once they have all exited
            write = -1
            with httpx.Client(base_url=base, headers=admin, timeout=30) as http, ThreadPoolExecutor(8) as pool:
                ask = lambda rid: http.get(f"/v1/jobs/J{1 + int(rid[5:]) % 900:06d}", headers={"X-Request-ID": rid})  # noqa: E731
                statuses = {r.status_code for r in pool.map(ask, asked)}
            assert statuses <= {200, 404}  # a soft-deleted job is a 404, logged all the same
    finally:
        if write >= 0:
            os.close(write)
        reader.join(60)
        os.close(read)
    lines = b"".join(got).decode().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]  # a cut line fails to parse here
    for line in lines:
        assert line.startswith("{") or line.startswith(("INFO - ", "WARNING - ")), f"a line was cut: {line[:200]!r}"
    served = sorted(r["request_id"] for r in records if r.get("event") == "request" and r["request_id"] in asked)
    assert served == asked  # each request's line once, the last ones too


def test_a_stop_right_after_the_last_requests_loses_none_of_their_lines(
    demo_db_path: Path, tmp_path: Path, admin: dict[str, str]
) -> None:
    # uvicorn re-raises SIGTERM once it has shut down, and the signal's default action ends the
    # process without atexit: lines still in the sink's buffer (its last half second) were lost.
    mapping = demo_mapping_with(tmp_path)
    log = tmp_path / "server.log"
    asked = [f"stop-{n:03d}" for n in range(40)]
    for workers in (1, 2):
        log.write_bytes(b"")
        fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        try:
            server = serving(mapping, demo_db_path, tmp_path / "state.db", workers=workers, log_level="info", stderr=fd)
            with server as (base, _), httpx.Client(base_url=base, headers=admin, timeout=30) as http:
                for rid in asked:  # then the stop at once, well inside the sink's flush interval
                    http.get(f"/v1/jobs/J{1 + int(rid[5:]):06d}", headers={"X-Request-ID": rid})
        finally:
            os.close(fd)
        records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        served = sorted(r["request_id"] for r in records if r.get("event") == "request" and r["request_id"] in asked)
        assert served == asked, f"{workers} worker(s): {len(asked) - len(served)} request lines lost at the stop"
