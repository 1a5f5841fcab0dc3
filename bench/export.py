"""The export scenario: every visible job as one streamed response, timed, with the server's peak RSS.

Each server is started fresh for it, so ``VmHWM`` (the kernel's high-water mark of
resident memory) covers start-up plus this one export and nothing else. The CPU the
server's processes spent over the export (user + system, ``/proc/<pid>/stat``) is kept
too: on a shared machine it moves far less than rows/s, which counts other work's waits.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from bench.data import work_path
from bench.servers import Running, cpu_seconds, peak_rss_mb

__all__ = ("ExportResult", "run_export")


@dataclass(frozen=True)
class ExportResult:
    rows: int
    seconds: float
    first_byte_s: float
    megabytes: float
    peak_rss_mb: float
    idle_rss_mb: float
    status: str
    cpu_s: float = 0.0
    """CPU seconds (user + system) of the server's processes over the export."""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_row(self) -> float:
        return self.cpu_s * 1e6 / self.rows if self.rows else 0.0


def run_export(server: Running, headers: dict[str, str], timeout_s: float) -> ExportResult:
    if server.spec.kind == "sandman2":
        path, marker = "/jobmast/", b'"JOBNO":'  # sandman2 answers one JSON document, built in memory
    else:
        path, marker = "/v1/jobs", b"\n"
        headers = {**headers, "Accept": "application/x-ndjson"}
    _, idle = peak_rss_mb(server)
    out = work_path("export.out")
    command = [
        "curl",
        "-sS",
        "--max-time",
        str(int(timeout_s)),
        "-o",
        str(out),
        "-w",
        "%{http_code} %{time_starttransfer}",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    cpu_before = cpu_seconds(server)
    started = time.monotonic()
    done = subprocess.run([*command, server.base + path], capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    hwm, _ = peak_rss_mb(server)
    cpu = cpu_seconds(server) - cpu_before
    code, _, ttfb = done.stdout.partition(" ")
    rows, size = 0, 0
    if out.exists():
        tail = b""
        with out.open("rb") as f:
            while chunk := f.read(1 << 22):
                size += len(chunk)
                # Count on tail + chunk, so a marker split across two reads is still seen, once.
                window = tail + chunk
                rows += window.count(marker) - tail.count(marker)
                tail = window[-(len(marker) - 1) :] if len(marker) > 1 else b""
        out.unlink()
    status = code if done.returncode == 0 else f"{code} (curl exit {done.returncode}: {done.stderr.strip()[:80]})"
    return ExportResult(rows, seconds, float(ttfb or 0), size / 1e6, hwm, idle, status, cpu)
