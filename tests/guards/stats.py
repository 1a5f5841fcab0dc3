"""The schemathesis guard's counters: gathered per process, merged across pytest-xdist workers, printed once.

A worker sends its counters to the controller when its session ends (``workeroutput``); the
controller merges them (``tests/conftest.py``) and prints the summary at the end of the run.
Without xdist the one process is both.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

WORKER_OUTPUT_KEY = "schemathesis_guard"


@dataclass
class GuardStats:
    cases: int = 0
    seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    """``"POST /v1/jobs 201"`` -> how often: shows the guard reached the success paths, not only 4xx."""
    known: dict[str, list[str]] = field(default_factory=dict)
    """Failures another branch fixes: description -> a few requests (curl) that show it."""
    server_errors: dict[str, str] = field(default_factory=dict)
    """request id -> the exception the gateway logged for it (type, message, innermost frames)."""
    causes: dict[str, str] = field(default_factory=dict)
    """Each distinct logged cause of a 5xx -> one request (curl) that produced it."""

    first: float = 0.0
    last: float = 0.0
    """Monotonic clock at the first and the last case: the guard's wall time, generation included.
    (CLOCK_MONOTONIC is one clock for every process of the machine, so workers' values compare.)"""

    listed: set[str] = field(default_factory=set)
    """Every known-elsewhere entry of the guard, seen this run or not."""

    def record_case(self, label: str, status: str, seconds: float) -> None:
        self.last = time.monotonic()
        self.first = self.first or self.last - seconds
        self.cases += 1
        self.seconds += seconds
        self.statuses[f"{label} {status}"] += 1

    def record_cause(self, cause: str, curl: str) -> None:
        self.causes.setdefault(cause, curl)

    def record_known(self, what: str, curl: str) -> None:
        requests = self.known.setdefault(what, [])
        if len(requests) < 3 and curl not in requests:
            requests.append(curl)

    def as_message(self) -> dict[str, Any]:
        """What a worker sends the controller (execnet carries plain dicts, lists, str, numbers)."""
        return {
            "cases": self.cases,
            "seconds": self.seconds,
            "statuses": dict(self.statuses),
            "known": self.known,
            "causes": self.causes,
            "first": self.first,
            "last": self.last,
            "listed": sorted(self.listed),
        }

    def merge(self, message: dict[str, Any]) -> None:
        """Add one worker's counters (``as_message``) to these."""
        if not message.get("cases") and not message.get("listed"):
            return
        self.cases += message["cases"]
        self.seconds += message["seconds"]
        self.statuses.update(message["statuses"])
        for what, requests in message["known"].items():
            for curl in requests:
                self.record_known(what, curl)
        for cause, curl in message["causes"].items():
            self.record_cause(cause, curl)
        if message["cases"]:
            self.first = min(self.first, message["first"]) if self.first else message["first"]
            self.last = max(self.last, message["last"])
        self.listed.update(message["listed"])

    def write_summary(self, terminalreporter: Any) -> None:
        if not self.cases:
            return
        terminalreporter.section("schemathesis guard")
        terminalreporter.write_line(
            f"{self.cases} cases in {self.last - self.first:.0f} s ({self.seconds:.0f} s of it in requests)"
        )
        by_operation: dict[str, list[str]] = {}
        unexpected = 0
        for label, count in sorted(self.statuses.items()):
            operation, status = label.rsplit(" ", 1)
            if status == "405" or operation.startswith("OPTIONS "):  # methods the document does not list
                unexpected += count
                continue
            by_operation.setdefault(operation, []).append(f"{status}x{count}")
        terminalreporter.write_line(f"    {'undocumented methods (405, or 204 for OPTIONS)':45s} {unexpected}")
        for operation, counts in by_operation.items():
            terminalreporter.write_line(f"    {operation:45s} {' '.join(counts)}")
        for cause, curl in self.causes.items():
            terminalreporter.write_line(f"5xx, the gateway logged: {cause}")
            terminalreporter.write_line(f"    {curl}")
        for what, requests in self.known.items():
            terminalreporter.write_line(f"KNOWN, fixed on another branch: {what}")
            for request in requests:
                terminalreporter.write_line(f"    {request}")
        for what in sorted(self.listed - set(self.known)):
            terminalreporter.write_line(
                f"KNOWN entry not seen this run (fixed? delete it from KNOWN_ELSEWHERE): {what}"
            )


STATS = GuardStats()
"""This process's counters (on the xdist controller: every worker's, merged)."""
