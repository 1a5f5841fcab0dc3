"""Requests per minute and status class, counted in memory and added to the state store every few seconds.

The console's request chart reads ``gateway_request_buckets`` (``sync/state/request_series.py``),
which every worker process adds to, so the chart shows the whole server without Prometheus.
Counting is a dict increment under a lock on the response path; the write happens on a
background thread (and once more at shutdown), never in a request.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import structlog

from sync.state.request_series import RequestSeries
from sync.state.utc import utcnow

if TYPE_CHECKING:
    from litestar.types import Message, Scope

    from sync.state.store import StateDatabase

__all__ = ("RequestCounter",)

log = structlog.get_logger("bridgehead.console")
FLUSH_S = 5.0


class RequestCounter:
    def __init__(self, state: StateDatabase, flush_s: float = FLUSH_S) -> None:
        self.series = RequestSeries(state)
        self.flush_s = flush_s
        self._counts: Counter[tuple[dt.datetime, str]] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._minute: tuple[int, dt.datetime] = (-1, utcnow())

    async def count(self, message: Message, scope: Scope) -> None:
        """A ``before_send`` hook: one count per response, by the minute it started and its status class."""
        if message["type"] != "http.response.start":
            return
        now = int(time.time()) // 60
        if now != self._minute[0]:  # a datetime made once a minute, not per response
            self._minute = (now, dt.datetime.fromtimestamp(now * 60, dt.UTC))
        minute = self._minute[1]
        with self._lock:
            self._counts[(minute, f"{int(message['status']) // 100}xx")] += 1

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        try:
            self.series.add(counts)
        except Exception as exc:  # the store is down: keep the counts for the next flush, never fail a request
            log.warning("request counts not stored", error=str(exc))
            with self._lock:
                self._counts.update(counts)

    def since(self, start: dt.datetime) -> list[tuple[dt.datetime, str, int]]:
        self.flush()  # this process's latest minute too
        return self.series.since(start)

    def start(self, *_: Any) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="console-request-counts", daemon=True)
            self._thread.start()

    def stop(self, *_: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()
