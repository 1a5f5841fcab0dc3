"""``bridgehead serve --workers 2``: a cursor issued by one worker is honoured by the other.

Without ``api.cursor_secret`` each worker drew its own random secret, so a next
link served by the other worker was refused as forged (400). A real server with
two worker processes on 127.0.0.1; every request opens a new connection, so the
kernel hands them to both workers (checked through each worker's CPU time in /proc).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gateway.cli import mint_token
from legacy_adapters.demo import DEMO_MAPPING_PATH, create_demo_database
from tests.conftest import JWT_SECRET


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                found.append(int(entry.name))
    return found


def _cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process, in clock ticks: an idle worker gains (almost) none."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[int]]]:
    tmp = tmp_path_factory.mktemp("workers")
    db = tmp / "demo.db"
    create_demo_database(db, rows=300)
    port = _free_port()
    env = {
        **os.environ,
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_DB_URL": f"sqlite:///{db}",
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{tmp / 'state.db'}",
    }
    command = [sys.executable, "-m", "gateway", "serve", "-c", str(DEMO_MAPPING_PATH), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", "2", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while time.monotonic() < deadline:
        try:
            workers = [p for p in _children(process.pid) if _is_worker(p)]
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200 and len(workers) == 2:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    else:
        process.kill()
        raise AssertionError(f"server did not start: {process.stderr.read().decode() if process.stderr else ''}")
    try:
        yield base, workers
        assert process.poll() is None, "the server died"
        assert sorted(p for p in _children(process.pid) if _is_worker(p)) == sorted(workers), (
            "a worker died and was replaced: " + (process.stderr.read1().decode() if process.stderr else "")  # type: ignore[attr-defined]
        )
    finally:
        process.terminate()
        process.wait(timeout=20)


def _is_worker(pid: int) -> bool:
    # uvicorn's workers are spawned Python processes (spawn_main); the resource tracker is not one.
    try:
        return "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


def _walk(base: str, headers: dict[str, str]) -> int:
    """Follow next links to the end, a new connection per page; the number of pages."""
    url = f"{base}/v1/jobs?limit=40&sort=-due_date"
    pages = 0
    while url:
        response = httpx.get(url, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        pages += 1
        link = response.headers.get("link")
        url = base + link[1 : link.index(">")] if link else ""
    return pages


def test_next_links_work_on_either_worker(two_workers: tuple[str, list[int]]) -> None:
    base, workers = two_workers
    token = mint_token(
        JWT_SECRET,
        subject="walker",
        scopes=["admin"],
        claims={},
        ttl_s=600,
        issuer="bridgehead-demo",
        audience="bridgehead",
    )
    headers = {"Authorization": f"Bearer {token}"}
    before = {pid: _cpu_ticks(pid) for pid in workers}
    with ThreadPoolExecutor(max_workers=6) as pool:
        pages = list(pool.map(lambda _: _walk(base, headers), range(12)))
    assert all(p >= 7 for p in pages)  # 300 jobs, 40 a page: every walk crossed many page boundaries
    busy = {pid: _cpu_ticks(pid) - before[pid] for pid in workers}
    assert all(ticks >= 5 for ticks in busy.values()), f"both workers must have served pages: {busy}"


def test_demo_files_are_private(tmp_path: Path) -> None:
    """The demo's database, state store and JWT secret are the owner's only (0600, folder 0700)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGEHEAD_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--rows", "50", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).parents[2])},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError(process.stderr.read().decode() if process.stderr else "demo did not start")
        folder = tmp_path / ".bridgehead"
        assert folder.stat().st_mode & 0o777 == 0o700
        files = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir() if p.is_file()}
        assert {"demo.db", "jwt-secret", "state.db"} <= set(files), files
        assert set(files.values()) == {0o600}, files
    finally:
        process.terminate()
        process.wait(timeout=20)
