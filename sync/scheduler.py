"""``sync run --loop``: every sync on its own schedule, in its own thread, so none waits behind another.

One loop running syncs one after another made a stock change wait for a
catalogue-wide price run (194 s against a 60 s promise). Here each sync has a
thread that runs it, sleeps until ``interval_s`` after that run *started* (at
least ``min_sleep_s``), and runs it again; a long ``items`` run only delays the
next ``items`` run. Threads are bounded by the number of syncs; they share the
engine (thread-safe), the state store and, through it, the shop's rate budget.
A run that fails is reported and the thread carries on; only ``stop`` ends it.

One more thread evaluates every alert each ``alert.tick_s`` (``sync/alerts``): lag grows
between runs, and a run that hangs must still raise it. Runs evaluate their own sync's
alerts as they finish.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from sync.engine import RunReport, SyncEngine

__all__ = ("SyncLoop",)

log = structlog.get_logger("bridgehead.sync")


class SyncLoop:
    def __init__(
        self,
        engine: SyncEngine,
        names: Sequence[str],
        *,
        dry_run: bool = False,
        on_report: Callable[[RunReport], None] | None = None,
        min_sleep_s: float = 0.5,
    ) -> None:
        self.engine, self.names, self.dry_run = engine, tuple(names), dry_run
        self.on_report = on_report or (lambda _report: None)
        self.min_sleep_s = min_sleep_s
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> SyncLoop:
        for name in self.names:
            thread = threading.Thread(target=self._forever, args=(name,), name=f"sync-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)
        if not self.dry_run:
            ticker = threading.Thread(target=self._tick, name="sync-alerts", daemon=True)
            ticker.start()
            self.threads.append(ticker)
        return self

    def _tick(self) -> None:
        monitor = self.engine.alerts
        while not self.stop.wait(monitor.tick_s):
            monitor.safely()

    def join(self, timeout: float | None = None) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def run_forever(self) -> None:
        """Start every sync's thread and wait until ``stop`` is set (Ctrl-C sets it)."""
        self.start()
        try:
            while not self.stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.stop.set()
        self.join()

    def _forever(self, name: str) -> None:
        interval = self.engine.config.syncs[name].interval_s
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.on_report(self.engine.run(name, dry_run=self.dry_run))
            except Exception:  # the state store down, say: this round failed, the schedule goes on
                log.exception("sync loop round failed", sync=name)
            self.stop.wait(max(self.min_sleep_s, started + interval - time.monotonic()))
