"""The workers of ``serve --workers 2`` each get their share of new connections, even from a busy moment.

With one shared listening socket the worker that is idle when connections arrive accepts all of
them; keep-alive clients then stay on it and the server runs at one worker's speed (in
``make bench``: all 32 of wrk's connections on one worker whenever a run followed another on the
same server). Here one worker is stopped (SIGSTOP) while 32 connections are opened, the way a
worker busy with a burst of lists would not be accepting: each worker must still end up with its
share of them, because each listens on a socket of its own (``gateway/listen.py``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import JWT_SECRET
from tests.ops.servers import children, demo_mapping_with, free_port, serving

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT balances connections on Linux only")

LISTEN, ESTABLISHED = "0A", "01"


def _sockets(pids: list[int], port: int) -> dict[int, Counter[str]]:
    """Per process, its TCP sockets on local ``port`` by state (/proc/net/tcp, matched by inode)."""
    states: dict[str, str] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            states[fields[9]] = fields[3]
    found: dict[int, Counter[str]] = {}
    for pid in pids:
        counts: Counter[str] = Counter()
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in states:
                    counts[states[target[8:-1]]] += 1
        except OSError:  # a helper process that has already exited
            continue
        found[pid] = counts
    return found


def _listening_workers(pid: int, port: int) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = [p for p, counts in _sockets(children(pid), port).items() if counts[LISTEN]]
        if len(workers) == 2:
            return workers
        time.sleep(0.2)
    raise AssertionError("two workers did not both listen within 60 s")


def test_a_worker_busy_when_connections_arrive_still_gets_its_share(demo_db_path: Path, tmp_path: Path) -> None:
    with serving(demo_mapping_with(tmp_path), demo_db_path, tmp_path / "state.db", workers=2) as (base, process):
        port = int(base.rsplit(":", 1)[1])
        busy, idle = _listening_workers(process.pid, port)
        os.kill(busy, signal.SIGSTOP)
        try:
            clients = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(32)]
            time.sleep(0.5)  # time enough for the running worker to accept every connection it can reach
        finally:
            os.kill(busy, signal.SIGCONT)
        try:
            for client in clients:
                client.sendall(b"GET /health/live HTTP/1.1\r\nHost: bridgehead\r\n\r\n")
            for client in clients:
                assert client.recv(64).startswith(b"HTTP/1.1 200"), "a connection was not served"
            held = _sockets([busy, idle], port)
            # Hashed over the two sockets: each worker holds about 16 (fewer than 4 has odds of 1 in 10^5).
            assert held[busy][ESTABLISHED] >= 4, held
            assert held[idle][ESTABLISHED] >= 4, held
            assert held[busy][ESTABLISHED] + held[idle][ESTABLISHED] == 32, held
            # The parent reserves the port without listening: no connection may wait in a queue nobody reads.
            assert _sockets([process.pid], port)[process.pid][LISTEN] == 0
        finally:
            for client in clients:
                client.close()


def test_a_port_another_program_listens_on_is_a_clear_error(demo_db_path: Path, tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "gateway", "serve", "-c", str(demo_mapping_with(tmp_path)), "--port", str(port),
             "--workers", "2"],
            env={**os.environ, "BRIDGEHEAD_DB_URL": f"sqlite:///{demo_db_path}",
                 "BRIDGEHEAD_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
                 "BRIDGEHEAD_JWT_SECRET": JWT_SECRET},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode != 0
    assert f"bridgehead: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr
