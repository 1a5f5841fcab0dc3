"""The schemathesis guard's fixtures: its counters (tests/guards/stats.py) and the exceptions the gateway logs."""

from __future__ import annotations

import traceback
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog

from tests.guards.stats import STATS, WORKER_OUTPUT_KEY, GuardStats


@pytest.fixture(scope="session")
def guard_stats() -> GuardStats:
    return STATS


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
        STATS.server_errors[event["request_id"]] = f"{type(exc).__name__}: {str(exc)[:300]} at {where}"
    return event


@pytest.fixture(autouse=True)
def _quiet_structlog() -> Iterator[None]:
    """As the suite's, plus: every exception the gateway logs is kept by request id, to explain a 5xx."""
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, _keep_exceptions, structlog.processors.KeyValueRenderer()],
        logger_factory=structlog.ReturnLoggerFactory(),
    )
    yield


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a pytest-xdist worker: hand this worker's counters to the controller, which prints them all."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKER_OUTPUT_KEY] = STATS.as_message()
