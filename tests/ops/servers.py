"""Real ``bridgehead serve`` processes on loopback ports, for tests of what processes share."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from legacy_adapters.demo import DEMO_MAPPING_PATH
from tests.conftest import JWT_SECRET

CURSOR_SECRET = "ops-test-cursor-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_mapping_with(folder: Path, api_lines: str = "") -> Path:
    """The demo mapping with a shared cursor secret and ``api_lines`` added to its ``api`` block."""
    mapping = folder / "bridgehead.yaml"
    block = f"\napi:\n  cursor_secret: {CURSOR_SECRET}\n{api_lines}"
    mapping.write_text(DEMO_MAPPING_PATH.read_text().replace("\napi:\n", block, 1))
    return mapping


@contextmanager
def serving(
    mapping: Path,
    db: Path,
    state: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    log_level: str = "warning",
    stderr: int | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``bridgehead serve`` on a free port; ``stderr`` (a file descriptor) takes its log instead of a pipe here."""
    port = free_port()
    full_env = {
        **{k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "BRIDGEHEAD_RATE_LIMIT_DIR")},
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_DB_URL": f"sqlite:///{db}",
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{state}",
        **(env or {}),
    }
    command = [sys.executable, "-m", "gateway", "serve", "-c", str(mapping), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers), "--log-level", log_level],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if stderr is None else stderr,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read().decode() if process.stderr else ""
                raise AssertionError(f"bridgehead serve did not start: {err[-2000:]}")
            time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def environ_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # a helper process that has already exited
        return {}
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw if b"=" in item)
