"""The schemathesis guard's counters, printed at the end of the run with the failures left to other branches."""

from __future__ import annotations

import time
import traceback
from collections import Counter
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog


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
    """Monotonic clock at the first and the last case: the guard's wall time, generation included."""

    def record_case(self, label: str, status: str, seconds: float) -> None:
        self.last = time.monotonic()
        self.first = self.first or self.last - seconds
        self.cases += 1
        self.seconds += seconds
        self.statuses[f"{label} {status}"] += 1

    listed: set[str] = field(default_factory=set)
    """Every known-elsewhere entry of the guard, seen this run or not."""

    def record_cause(self, cause: str, curl: str) -> None:
        self.causes.setdefault(cause, curl)

    def record_known(self, what: str, curl: str) -> None:
        requests = self.known.setdefault(what, [])
        if len(requests) < 3 and curl not in requests:
            requests.append(curl)


_STATS = GuardStats()


@pytest.fixture(scope="session")
def guard_stats() -> GuardStats:
    return _STATS


_OURS = ("/gateway/", "/legacy_adapters/", "/sync/")


def _short(filename: str) -> str:
    for package in _OURS:
        if package in filename:
            return package.strip("/") + "/" + filename.rsplit(package, 1)[1]
    return filename


def _keep_exceptions(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    exc = event.get("exc_info")
    if isinstance(exc, BaseException) and event.get("request_id"):
        # The innermost frames of our own code say where to look; library frames below them rarely do.
        ours = [f for f in traceback.extract_tb(exc.__traceback__) if any(p in f.filename for p in _OURS)]
        where = " <- ".join(f"{_short(f.filename)}:{f.lineno} {f.name}" for f in reversed(ours[-3:]))
        _STATS.server_errors[event["request_id"]] = f"{type(exc).__name__}: {str(exc)[:300]} at {where}"
    return event


@pytest.fixture(autouse=True)
def _quiet_structlog() -> Iterator[None]:
    """As the suite's, plus: every exception the gateway logs is kept by request id, to explain a 5xx."""
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, _keep_exceptions, structlog.processors.KeyValueRenderer()],
        logger_factory=structlog.ReturnLoggerFactory(),
    )
    yield


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _STATS.cases:
        return
    terminalreporter.section("schemathesis guard")
    terminalreporter.write_line(
        f"{_STATS.cases} cases in {_STATS.last - _STATS.first:.0f} s ({_STATS.seconds:.0f} s of it in requests)"
    )
    by_operation: dict[str, list[str]] = {}
    unexpected = 0
    for label, count in sorted(_STATS.statuses.items()):
        operation, status = label.rsplit(" ", 1)
        if status == "405" or operation.startswith("OPTIONS "):  # methods the document does not list
            unexpected += count
            continue
        by_operation.setdefault(operation, []).append(f"{status}x{count}")
    terminalreporter.write_line(f"    {'undocumented methods (405, or 204 for OPTIONS)':45s} {unexpected}")
    for operation, counts in by_operation.items():
        terminalreporter.write_line(f"    {operation:45s} {' '.join(counts)}")
    for cause, curl in _STATS.causes.items():
        terminalreporter.write_line(f"5xx, the gateway logged: {cause}")
        terminalreporter.write_line(f"    {curl}")
    for what, requests in _STATS.known.items():
        terminalreporter.write_line(f"KNOWN, fixed on another branch: {what}")
        for request in requests:
            terminalreporter.write_line(f"    {request}")
    for what in sorted(_STATS.listed - set(_STATS.known)):
        terminalreporter.write_line(f"KNOWN entry not seen this run (fixed? delete it from KNOWN_ELSEWHERE): {what}")
