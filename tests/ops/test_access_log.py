"""One JSON access-log line per request: id, route template, status, duration, subject, rows."""

from __future__ import annotations

import io
import json
from typing import Any

from litestar.testing import TestClient

from gateway.logging import configure_logging


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
