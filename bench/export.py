"""The export scenario: every visible job as one streamed response, timed, with the server's peak RSS.

Each server is started fresh for it, so ``VmHWM`` (the kernel's high-water mark of
resident memory) covers start-up plus this one export and nothing else. The CPU the
server's processes spent over the export (user + system, ``/proc/<pid>/stat``) is kept
too: on a shared machine it moves far less than rows/s, which counts other work's waits.

One export's rows/s is one sample of a noisy machine, so each server exports in several
rounds (``ExportRounds``): rows/s is judged on their median, first byte and memory on the
worst round, since a limit holds only if every export keeps it.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.data import work_path
from bench.servers import Running, cpu_seconds, peak_rss_mb

__all__ = ("ExportResult", "ExportRounds", "run_export")


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


@dataclass(frozen=True)
class ExportRounds:
    """Every round of one server's export, each from a freshly started server."""

    rounds: Sequence[ExportResult]

    @property
    def rows_per_s(self) -> float:
        """The median round's: one slow or fast export moves it no further than the middle one."""
        return statistics.median(r.rows_per_s for r in self.rounds)

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.rounds)

    @property
    def cpu_us_per_row(self) -> float:
        return statistics.median(r.cpu_us_per_row for r in self.rounds)

    @property
    def first_byte_s(self) -> float:
        """The worst round's: the limit holds only if every export keeps it."""
        return max(r.first_byte_s for r in self.rounds)

    @property
    def peak_rss_mb(self) -> float:
        """The worst round's ``VmHWM``."""
        return max(r.peak_rss_mb for r in self.rounds)

    @property
    def idle_rss_mb(self) -> float:
        return max(r.idle_rss_mb for r in self.rounds)

    @property
    def megabytes(self) -> float:
        return max(r.megabytes for r in self.rounds)

    def cut_off(self, rows: int) -> ExportResult | None:
        """The first round that did not answer 200 with ``rows`` rows (0: any count), if any."""
        return next((r for r in self.rounds if r.status != "200" or (rows and r.rows != rows)), None)

    @property
    def rows(self) -> int:
        return min(r.rows for r in self.rounds)

    @property
    def status(self) -> str:
        """``200``, or the first other status a round ended with."""
        return next((r.status for r in self.rounds if r.status != "200"), "200")

    def shown(self) -> str:
        """Every round's rows/s, in the order they ran: the noise, visible."""
        return " ".join(f"{r.rows_per_s:.0f}" for r in self.rounds)


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
