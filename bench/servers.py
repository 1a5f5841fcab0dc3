"""Start, probe and stop the servers under test; read their peak memory from /proc.

Each server runs in its own process group (started here, stopped here by that group's
id), with the same number of worker processes as every other server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.data import ROOT, work_path

__all__ = ("Running", "ServerSpec", "cpu_seconds", "peak_rss_mb", "start")

VENV_BIN = ROOT / ".venv" / "bin"
SANDMAN2_BIN = ROOT / "bench" / ".venv-sandman2" / "bin"


@dataclass(frozen=True)
class ServerSpec:
    name: str
    label: str
    """How the results table names it."""
    kind: str
    """``bridgehead``, ``floor``, ``ceiling`` or ``sandman2``: decides the URLs a scenario sends."""
    env: dict[str, str] = field(default_factory=dict)
    only: tuple[str, ...] = ()
    """The scenarios it runs and is checked on; empty: every scenario."""

    def runs(self, scenario: str) -> bool:
        return not self.only or scenario in self.only

    def command(self, port: int, workers: int, env: dict[str, str]) -> list[str]:
        if self.kind == "bridgehead":
            # Exactly what an operator runs: `bridgehead serve`, its default server stack and
            # its request log at info (JSON lines into the server's log file).
            return [
                str(VENV_BIN / "bridgehead"), "serve", "-c", env[env.get("BENCH_MAPPING_VAR", "BENCH_MAPPING")],
                "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(workers), "--log-level", env.get("BENCH_LOG_LEVEL", "info"),
            ]  # fmt: skip
        if self.kind == "sandman2":
            # The stack sandman2 is deployed on: its Flask app under gunicorn's (default) sync workers.
            return [
                str(SANDMAN2_BIN / "gunicorn"), "-k", "sync", "-w", str(workers), "-b", f"127.0.0.1:{port}",
                "--log-level", "warning", "--timeout", "300", "bench.sandman2_app:create()",
            ]  # fmt: skip
        # The hand-written floor and the ceiling run on the same fast stack (uvloop + httptools, as uvicorn
        # picks them when installed), so the ratio measures the generic path, not the server.
        app = ["bench.ceiling_app:app"] if self.kind == "ceiling" else ["--factory", "bench.floor_app:create_app"]
        return [
            str(VENV_BIN / "python"), "-m", "uvicorn", *app, "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log",
            "--loop", "uvloop", "--http", "httptools",
        ]  # fmt: skip


@dataclass
class Running:
    spec: ServerSpec
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The server's master and every descendant (uvicorn/gunicorn workers)."""
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            try:
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def free_port(wanted: int) -> int:
    """``wanted`` if nothing listens there, else a port the kernel picks: the machine may be shared, and a
    server someone else left on ``wanted`` would answer the probes and the load instead of ours."""
    for port in (wanted, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise SystemExit("bench: no free TCP port on 127.0.0.1")


def start(spec: ServerSpec, port: int, workers: int, env: dict[str, str], ready_path: str) -> Running:
    """Start ``spec`` (on ``port``, or a free one if that is taken) and wait until it answers ``ready_path``
    (any status but a connection error)."""
    port = free_port(port)
    log = work_path(f"server-{spec.name}.log")
    full_env = {**os.environ, **env, **spec.env, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            spec.command(port, workers, full_env), cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    running = Running(spec, port, process, log)
    deadline = time.monotonic() + 300  # serve proves keys unique on 1M rows first: slow on a busy machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: {spec.name} exited at start-up; see {log}:\n{log.read_text()[-2000:]}")
        try:
            httpx.get(running.base + ready_path, timeout=5)
            # Every worker must be up, not just the first to bind (uvicorn runs one worker in-process).
            if len(running.pids()) >= (1 if workers == 1 and spec.kind != "sandman2" else workers + 1):
                return running
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    running.stop()
    raise SystemExit(f"bench: {spec.name} did not answer within 300 s; see {log}")


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_mb(running: Running) -> tuple[float, float]:
    """(largest VmHWM, largest VmRSS) over the server's processes, in MB."""
    pids = running.pids()
    return (
        max(_status_kb(p, "VmHWM") for p in pids) / 1024,
        max(_status_kb(p, "VmRSS") for p in pids) / 1024,
    )


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(running: Running) -> float:
    """User + system CPU seconds the server's live processes have used so far (``/proc/<pid>/stat``)."""
    total = 0
    for pid in running.pids():
        try:
            # Fields after the command name, which is in parentheses and may hold spaces.
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS
