"""Uvicorn factories for the servers the benchmark starts with ``--workers N``.

``bridgehead`` serves the bench copy of the demo mapping (``BENCH_MAPPING``) exactly as
``bridgehead serve`` would, auth on, except that uvicorn may run several workers, which
``bridgehead serve`` cannot yet (the lead owns gateway/cli.py).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ("bridgehead", "bridgehead_tuned")


def bridgehead() -> Litestar:
    from gateway.app import create_app
    from gateway.logging import configure_logging
    from legacy_adapters import load_mapping

    configure_logging(os.environ.get("BENCH_LOG_LEVEL", "warning"))
    return create_app(load_mapping(os.environ["BENCH_MAPPING"]))


class _SharedWatchdog:
    """One timer thread for every connection instead of a new ``threading.Timer`` per statement.

    Bench-only sketch of the proposal for legacy_adapters/dialects/_odbc.py: arming is a
    dict write under a lock; one daemon thread wakes every 50 ms and cancels overdue cursors.
    """

    _lock = None
    _armed: dict[int, tuple[float, object]] = {}

    def __init__(self) -> None:
        import threading

        cls = type(self)
        if cls._lock is None:
            cls._lock = threading.Lock()
            threading.Thread(target=cls._run, name="bh-watchdog", daemon=True).start()

    def arm(self, cursor: object, seconds: float) -> None:
        import time

        with self._lock:  # type: ignore[attr-defined]
            self._armed[id(self)] = (time.monotonic() + seconds, cursor)

    def disarm(self) -> None:
        with self._lock:  # type: ignore[attr-defined]
            self._armed.pop(id(self), None)

    @classmethod
    def _run(cls) -> None:
        import time

        while True:
            time.sleep(0.05)
            now = time.monotonic()
            with cls._lock:  # type: ignore[attr-defined]
                overdue = [(k, c) for k, (deadline, c) in cls._armed.items() if deadline <= now]
                for k, _ in overdue:
                    del cls._armed[k]
            for _, cursor in overdue:
                try:
                    cursor.cancel()  # type: ignore[attr-defined]
                except Exception:
                    pass


def bridgehead_tuned() -> Litestar:
    """Bridgehead with the proposed driver-path fixes patched in at start-up (measurement only).

    ``BENCH_TUNING`` (comma separated): ``no_preping`` turns off the pool's pre-ping (a
    ``SELECT 1`` round trip on every checkout; errors already invalidate dead connections),
    ``shared_watchdog`` replaces the per-statement timer thread with ``_SharedWatchdog``.
    """
    from legacy_adapters.dialects import _odbc, sqlite

    tuning = set(os.environ.get("BENCH_TUNING", "no_preping,shared_watchdog").split(","))
    if "no_preping" in tuning:
        for backend in (_odbc.OdbcBackend, sqlite.SQLiteBackend):
            original = backend.engine_options
            backend.engine_options = lambda self, config, _o=original: {**_o(self, config), "pool_pre_ping": False}  # type: ignore[method-assign]
    if "shared_watchdog" in tuning:
        _odbc.Watchdog = _SharedWatchdog  # type: ignore[misc,assignment]
    return bridgehead()
