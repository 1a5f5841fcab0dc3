"""``/metrics``: names present and moving under a few requests, in one process and across workers."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from litestar.testing import TestClient

from legacy_adapters.demo import DEMO_MAPPING_PATH
from tests.conftest import JWT_SECRET


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_workers_are_counted_together(demo_db_path: Path, tmp_path: Path, token: Any) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_DB_URL": f"sqlite:///{demo_db_path}",
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "BRIDGEHEAD_CURSOR_SECRET": "metrics-test-cursor-secret-0123456789",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # Workers must share a cursor secret; the demo mapping with one set, as an operator would.
    mapping = tmp_path / "bridgehead.yaml"
    text = DEMO_MAPPING_PATH.read_text()
    mapping.write_text(text.replace("\napi:\n", "\napi:\n  cursor_secret: ${BRIDGEHEAD_CURSOR_SECRET}\n", 1))
    command = [sys.executable, "-m", "gateway", "serve", "-c", str(mapping), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", "2", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token('admin')}"}
        # Fresh connections spread over both workers; the kernel balances the shared socket.
        for _ in range(40):
            with httpx.Client() as fresh:
                assert fresh.get(f"{base}/v1/jobs/J000001", headers=headers).status_code == 200
        scraped = [httpx.get(f"{base}/metrics").text for _ in range(6)]
        counts = {
            _sample(text, "bridgehead_http_requests_total", method="GET", route="/v1/jobs/{key}", status="200")
            for text in scraped
        }
        assert counts == {40.0}  # every scrape, whichever worker answers, sees both workers' requests
    finally:
        process.terminate()
        process.wait(timeout=20)
