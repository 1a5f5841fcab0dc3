"""``python -m bench.phase NAME -- COMMAND ...``: run one phase of ``make bench`` and note what it cost and what else ran.

    python -m bench.phase sync-latency -- .venv/bin/python -m bench.sync_latency --out bench/results/sync-latency.md
    python -m bench.phase http --strict -- .venv/bin/python -m bench      # exit with the phase's status

Runs the command, then writes ``bench/.work/phase-NAME.json``: when it started, its wall
time, the CPU its whole process tree used (``RUSAGE_CHILDREN``: every descendant its
parent waited for, servers' workers included) and the CPU every *other* process on the
machine used meanwhile (``/proc/stat``'s busy time minus the phase's own). That last figure
is what "a quiet machine" means here: the header of ``bench/results/latest.md`` shows it per
phase instead of a claim. A non-zero exit also writes ``bench/results/NAME.failed`` (the exit
status), which the target table reports as "not measured"; the exit status is passed on
only with ``--strict``, so one failing phase does not stop the others.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.data import work_path
from bench.targets import RESULTS

__all__ = ("Meter", "busy_seconds", "machine_lines", "main", "read_phases")

QUIET_SHARE = 0.05
"""Other processes using less than this share of the machine's CPU during a phase: a quiet machine."""

_TICK = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (every core; idle and iowait excluded)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICK


def read_phases() -> list[dict[str, Any]]:
    """The phases of this ``make bench`` run (started since ``BENCH_STARTED``); none outside ``make bench``."""
    if not os.environ.get("BENCH_STARTED"):
        return []
    started = float(os.environ["BENCH_STARTED"])
    found = []
    for path in sorted(work_path(".").glob("phase-*.json")):
        phase = json.loads(path.read_text())
        if phase["started"] >= started:
            found.append(phase)
    return sorted(found, key=lambda p: p["started"])


class Meter:
    """The same figures for the process that is still running (``python -m bench`` writing its own header)."""

    def __init__(self, name: str) -> None:
        self.name, self.started, self._began, self._busy = name, time.time(), time.monotonic(), busy_seconds()

    def so_far(self) -> dict[str, Any]:
        wall = time.monotonic() - self._began
        own = sum(
            u.ru_utime + u.ru_stime
            for u in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
        )
        busy = busy_seconds() - self._busy
        return {"name": self.name, "started": self.started, "seconds": wall, "cpu_s": own,
                "others_cpu_s": max(0.0, busy - own), "capacity_cpu_s": wall * (os.cpu_count() or 1), "exit": None}  # fmt: skip


def _share(phases: list[dict[str, Any]]) -> float:
    capacity = sum(p["capacity_cpu_s"] for p in phases)
    return sum(p["others_cpu_s"] for p in phases) / capacity if capacity else 0.0


def machine_lines(current: dict[str, Any]) -> tuple[str, list[str]]:
    """A header bullet saying how quiet the machine was, and a table of every phase of this run."""
    phases = [p for p in read_phases() if p["name"] != current["name"]] + [current]
    share = _share(phases)
    minutes = sum(p["seconds"] for p in phases) / 60
    verdict = (
        "a quiet machine"
        if share < QUIET_SHARE
        else "**not a quiet machine**: compare ratios within one round (the rounds column shows the noise), "
        "not absolute figures between runs"
    )
    bullet = (
        f"- {len(phases)} phase{'s' if len(phases) > 1 else ''}, {minutes:.1f} min in all; other processes used "
        f"{share:.0%} of the machine's CPU meanwhile ({os.cpu_count()} CPUs): {verdict}"
    )
    table = [
        "## Phases of this run",
        "",
        "What each phase took, the CPU its own processes used, and the CPU every other process on the machine "
        "used meanwhile (`/proc/stat` busy time minus the phase's; `bench/phase.py`).",
        "",
        "| phase | started (UTC) | minutes | its CPU (s) | other processes' CPU (s) | other processes' share | exit |",
        "|---|---|--:|--:|--:|--:|---|",
    ]
    for p in phases:
        started = time.strftime("%H:%M", time.gmtime(p["started"]))
        exit_ = "running (this table)" if p["exit"] is None else str(p["exit"])
        table.append(
            f"| {p['name']} | {started} | {p['seconds'] / 60:.1f} | {p['cpu_s']:.0f} | {p['others_cpu_s']:.0f} "
            f"| {_share([p]):.0%} | {exit_} |"
        )
    return bullet, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phase", description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--strict", action="store_true", help="exit with the phase's status")
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        parser.error("usage: python -m bench.phase NAME [--strict] -- COMMAND ...")
    split = argv.index("--")
    args, command = parser.parse_args(argv[:split]), argv[split + 1 :]
    if not command:
        parser.error("no command to run")
    failed = RESULTS / f"{args.name}.failed"
    failed.unlink(missing_ok=True)
    began_at, began, busy = time.time(), time.monotonic(), busy_seconds()
    code = subprocess.run(command, check=False).returncode
    wall, busy = time.monotonic() - began, busy_seconds() - busy
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = usage.ru_utime + usage.ru_stime
    figures = {
        "name": args.name, "started": began_at, "seconds": wall, "cpu_s": own,
        "others_cpu_s": max(0.0, busy - own), "capacity_cpu_s": wall * (os.cpu_count() or 1), "exit": code,
    }  # fmt: skip
    work_path(f"phase-{args.name}.json").write_text(json.dumps(figures))
    others = figures["others_cpu_s"] / figures["capacity_cpu_s"] if wall else 0.0
    print(
        f"bench.phase: {args.name} took {wall / 60:.1f} min (exit {code}); its CPU {own:.0f} s, "
        f"other processes' {figures['others_cpu_s']:.0f} s ({others:.0%} of the machine)",
        flush=True,
    )
    if code != 0:
        RESULTS.mkdir(parents=True, exist_ok=True)
        failed.write_text(f"{code}\n")
    return code if args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
