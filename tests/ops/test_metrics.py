"""``/metrics``: names present and moving under a few requests, in one process and across workers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from litestar.testing import TestClient

from tests.ops.servers import children, demo_mapping_with, environ_of, serving


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.rpartition("} ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_request_and_database_metrics_move(client: TestClient[Any], admin: dict[str, str]) -> None:
    before = client.get("/metrics")
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
    text = before.text
    for name in (
        "bridgehead_http_requests_total",
        "bridgehead_http_request_duration_seconds_bucket",
        "bridgehead_http_requests_in_progress",
        "bridgehead_db_statement_duration_seconds_count",
        "bridgehead_db_connections_in_use",
        "bridgehead_db_requests_waiting",
        "bridgehead_export_streams_open",
        "bridgehead_rows_served_total",
    ):
        assert f"# TYPE {name.removesuffix('_total').removesuffix('_bucket').removesuffix('_count')}" in text
    route = "/v1/jobs/{key}"
    gets = _sample(text, "bridgehead_http_requests_total", method="GET", route=route, status="200")
    selects = _sample(text, "bridgehead_db_statement_duration_seconds_count", operation="select")
    for _ in range(3):
        assert client.get("/v1/jobs/J000001", headers=admin).status_code == 200
    assert client.get("/v1/jobs/NOPE", headers=admin).status_code == 404
    assert client.get("/no/such/route").status_code == 404
    after = client.get("/metrics").text
    assert _sample(after, "bridgehead_http_requests_total", method="GET", route=route, status="200") == gets + 3
    assert _sample(after, "bridgehead_http_requests_total", method="GET", route=route, status="404") >= 1
    assert _sample(after, "bridgehead_http_requests_total", method="GET", route="unmatched", status="404") >= 1
    assert _sample(after, "bridgehead_db_statement_duration_seconds_count", operation="select") >= selects + 4
    assert _sample(after, "bridgehead_db_connections_in_use") == 0  # every connection went back
    assert "J000001" not in after and "Bearer" not in after  # label values are templates, never data
    assert _sample(after, "bridgehead_db_requests_waiting") == 0


def test_rows_served_and_open_exports(client: TestClient[Any], admin: dict[str, str]) -> None:
    def rows(route: str, fmt: str) -> float:
        return _sample(client.get("/metrics").text, "bridgehead_rows_served_total", route=route, format=fmt)

    listed, exported, single = rows("/v1/jobs", "json"), rows("/v1/jobs", "ndjson"), rows("/v1/jobs/{key}", "json")
    page = client.get("/v1/jobs?limit=7", headers=admin)
    assert len(page.json()["data"]) == 7
    export = client.get("/v1/jobs?customer_id=C0001", headers={**admin, "Accept": "application/x-ndjson"})
    lines = len(export.text.splitlines())
    assert lines > 0
    client.get("/v1/jobs/J000001", headers=admin)
    etag = client.get("/v1/jobs/J000001", headers=admin).headers["etag"]
    assert client.get("/v1/jobs/J000001", headers={**admin, "If-None-Match": etag}).status_code == 304
    assert rows("/v1/jobs", "json") == listed + 7
    assert rows("/v1/jobs", "ndjson") == exported + lines
    assert rows("/v1/jobs/{key}", "json") == single + 2  # the 304 sent no row
    assert _sample(client.get("/metrics").text, "bridgehead_export_streams_open") == 0  # the stream closed


def test_processes_sharing_the_folder_are_counted_together(demo_db_path: Path, tmp_path: Path, token: Any) -> None:
    """Two processes with one PROMETHEUS_MULTIPROC_DIR, as `serve --workers 2` makes: each scrape adds both."""
    mapping = demo_mapping_with(tmp_path)
    shared = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    (tmp_path / "metrics").mkdir()
    headers = {"Authorization": f"Bearer {token('admin')}"}
    state = tmp_path / "state.db"
    with (
        serving(mapping, demo_db_path, state, env=shared) as (a, _),
        serving(mapping, demo_db_path, state, env=shared) as (b, _),
    ):
        for i in range(20):
            assert httpx.get(f"{(a, b)[i % 2]}/v1/jobs/J000001", headers=headers).status_code == 200
        route = "/v1/jobs/{key}"
        for base in (a, b):
            text = httpx.get(f"{base}/metrics").text
            assert _sample(text, "bridgehead_http_requests_total", method="GET", route=route, status="200") == 20


def test_serve_with_workers_gives_them_shared_folders(demo_db_path: Path, tmp_path: Path) -> None:
    mapping = demo_mapping_with(tmp_path)
    with serving(mapping, demo_db_path, tmp_path / "state.db", workers=2) as (base, process):
        environs = [e for e in map(environ_of, children(process.pid)) if e.get("BRIDGEHEAD_CONFIG")]
        assert len(environs) >= 2  # the two workers
        folders = {e.get("PROMETHEUS_MULTIPROC_DIR") for e in environs}
        limits = {e.get("BRIDGEHEAD_RATE_LIMIT_DIR") for e in environs}
        assert len(folders) == 1 and None not in folders and len(limits) == 1 and None not in limits
        assert Path(next(iter(folders))).is_dir()  # type: ignore[arg-type]
        assert "bridgehead_http_requests_total" in httpx.get(f"{base}/metrics").text
