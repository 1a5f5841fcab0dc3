"""``bridgehead serve`` started while its database is down: it listens, answers 503, and serves once it is back.

Before, serve exited when the database was unreachable, so a restart during an
outage crash-looped. Each case is a real ``serve`` subprocess; the database
"comes back" when a loopback proxy starts listening on the port it was given.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from db_backends import JWT_SECRET, MARIADB_URL, PG_URL, portable_mapping_text, prepared_url, require_driver
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.odbc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(db_url: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    mapping = tmp_path / "bridgehead.yaml"
    mapping.write_text(portable_mapping_text(db_url), encoding="utf-8")
    port = _free_port()
    env = {
        **os.environ,
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_DB_URL": db_url,
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
    }
    command = [sys.executable, "-m", "gateway", "serve", "-c", str(mapping), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def _stderr(process: subprocess.Popen[bytes]) -> str:
    assert process.stderr is not None
    return process.stderr.read().decode(errors="replace")


def _wait_until_ready(base: str, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    status = 0
    while time.monotonic() < deadline:
        status = httpx.get(f"{base}/health/ready", timeout=5).status_code
        if status == 200:
            break
        time.sleep(0.3)
    return status


def test_serve_started_during_an_outage_answers_503_then_serves(
    demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, admin: dict[str, str]
) -> None:
    prepared_url("postgresql-odbc", demo_db_path, tmp_path_factory)  # the data it will find
    closed = _free_port()  # nothing listens here yet
    url = sa.make_url(PG_URL).set(port=closed).render_as_string(hide_password=False)
    with serving(url, tmp_path) as (base, process):
        assert process.poll() is None, f"serve exited during the outage: {_stderr(process)}"
        for path, headers in (("/health/ready", {}), ("/v1/jobs/J000005", admin), ("/v1/items?limit=2", {})):
            response = httpx.get(f"{base}{path}", headers=headers, timeout=10)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert int(response.headers["retry-after"]) > 0
        assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200

        proxy = TcpProxy(sa.make_url(PG_URL).port or 5432, port=closed)  # the database is back
        try:
            assert _wait_until_ready(base, 30) == 200
            job = httpx.get(f"{base}/v1/jobs/J000005", headers=admin, timeout=10)
            assert job.status_code == 200 and job.json()["job_number"] == "J000005"
            assert httpx.get(f"{base}/v1/items?limit=2", timeout=10).status_code == 200
        finally:
            proxy.close()


def test_a_mapping_checked_late_that_does_not_match_stops_serve(demo_db_path: Path, tmp_path: Path) -> None:
    """The check serve skipped at start runs once the database answers, and fails as it would have."""
    missing = tmp_path / "not-mounted-yet" / "legacy.db"
    with serving(f"sqlite:///{missing}", tmp_path) as (base, process):
        assert httpx.get(f"{base}/health/ready", timeout=5).status_code == 503
        missing.parent.mkdir()
        shutil.copyfile(demo_db_path, missing)
        with sqlite3.connect(missing) as conn:
            conn.execute("ALTER TABLE JOBMAST RENAME COLUMN QTY TO QUANTITY")
        assert process.wait(timeout=30) == 2
        stderr = _stderr(process)
        assert "the mapping does not match the database" in stderr
        assert "column 'QTY' is not in JOBMAST" in stderr


def test_a_wrong_password_says_the_drivers_reason_and_never_the_password(tmp_path: Path) -> None:
    require_driver("MariaDB Unicode")
    secret = "hunter2-not-the-password"
    url = sa.make_url(MARIADB_URL).set(password=secret).render_as_string(hide_password=False)
    mapping = tmp_path / "bridgehead.yaml"
    mapping.write_text(portable_mapping_text(url), encoding="utf-8")
    env = {**os.environ, "BRIDGEHEAD_JWT_SECRET": JWT_SECRET, "BRIDGEHEAD_DB_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "-c", str(mapping), "--port", str(_free_port())],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 2, output
    assert "refused the login" in output
    assert "Access denied for user" in output  # the driver's own reason, in the log
    assert "could not run the query" not in output
    assert secret not in output
