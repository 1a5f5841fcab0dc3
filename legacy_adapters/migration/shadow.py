"""Shadow reads: the legacy answer is served, and the same read is answered again from the clean twin later.

The request only pays for a coin toss and a ``put_nowait``: a bounded queue feeds one
worker thread, and a full queue drops the comparison (counted) rather than slowing
the caller. Each difference is logged with the resource, the row's key and the
fields that differ, never the values (they may be personal data).
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from legacy_adapters.migration.mirror import differing_fields

if TYPE_CHECKING:
    from legacy_adapters.migration.routing import Route

__all__ = ("MigrationStats", "ShadowComparer", "compare")

log = structlog.get_logger("bridgehead.migration")

COUNTERS = ("compared", "matched", "differed", "dropped", "failed", "mirrored", "mirror_failed", "drift")


@dataclass(slots=True)
class MigrationStats:
    """Counters per resource (shadow comparisons, mirrored writes, drift), safe across threads."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))
    """The last differences (resource, kind, key, fields; never values), for ``/health/migration``."""
    listeners: list[Callable[[str, str], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, resource: str, counter: str, n: int = 1) -> None:
        with self._lock:
            per = self.counts.setdefault(resource, dict.fromkeys(COUNTERS, 0))
            per[counter] += n
        for listener in self.listeners:
            listener(resource, counter)

    def of(self, resource: str) -> dict[str, int]:
        with self._lock:
            return dict(self.counts.get(resource, dict.fromkeys(COUNTERS, 0)))


def _key_of(route: Route, row: dict[str, Any]) -> str:
    return ",".join(str(row.get(f.name)) for f in route.legacy.key)


def compare(route: Route, kind: str, served: Any, shadow: Any) -> list[tuple[str, tuple[str, ...]]]:
    """(key, differing fields) for each difference between the served answer and the twin's."""
    names = list(route.legacy.fields)
    if kind == "count":
        return [] if served == shadow else [("count", ("count",))]
    if kind == "get":
        left = served[0] if served is not None else None
        right = shadow[0] if shadow is not None else None
        key = _key_of(route, left or right or {})
        fields = differing_fields(left, right, [*(left or right or {})])
        if not fields and served is not None and served[1] != shadow[1]:
            fields = ("etag",)
        return [(key, fields)] if fields else []
    differences: list[tuple[str, tuple[str, ...]]] = []
    left = {_key_of(route, row): row for row in served.rows}
    right = {_key_of(route, row): row for row in shadow.rows}
    for key in [*left, *(k for k in right if k not in left)]:
        fields = differing_fields(left.get(key), right.get(key), [*(left.get(key) or right.get(key) or {})] or names)
        if fields:
            side = "not in the new database's answer" if key not in right else ("only in the new database's answer"
                                                                            if key not in left else None)  # fmt: skip
            differences.append((key, (side,) if side else fields))
    if not differences and list(left) != list(right):
        differences.append(("order", ("rows in another order",)))
    if served.last != shadow.last:
        differences.append(("next_cursor", ("next_cursor",)))
    return differences


class ShadowComparer:
    """A ``ShadowSink``: samples served reads, replays them on the twin in a worker, counts and logs differences."""

    def __init__(self, stats: MigrationStats, *, rng: random.Random | None = None) -> None:
        self.stats = stats
        self._queues: dict[int, queue.Queue[tuple[Route, str, Any, Callable[[], Any]] | None]] = {}
        self._rng = rng or random.Random()
        self._queue: queue.Queue[tuple[Route, str, Any, Callable[[], Any]] | None] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _started(self, size: int) -> queue.Queue[tuple[Route, str, Any, Callable[[], Any]] | None]:
        with self._lock:
            if self._queue is None:
                self._queue = queue.Queue(maxsize=size)
                self._thread = threading.Thread(target=self._work, name="bridgehead-shadow", daemon=True)
                self._thread.start()
            return self._queue

    def offer(self, route: Route, kind: str, served: Any, replay: Callable[[], Any]) -> None:
        migration = route.legacy.spec.migration
        assert migration is not None
        if migration.shadow_sample < 1.0 and self._rng.random() >= migration.shadow_sample:
            return
        try:
            self._started(migration.shadow_queue).put_nowait((route, kind, served, replay))
        except queue.Full:
            self.stats.add(route.legacy.qualified_name, "dropped")

    def _work(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._compare(*item)
            finally:
                self._queue.task_done()

    def _compare(self, route: Route, kind: str, served: Any, replay: Callable[[], Any]) -> None:
        name = route.legacy.qualified_name
        try:
            shadow = replay()
        except Exception as exc:  # the twin failing must never reach a caller: it is counted and logged
            self.stats.add(name, "failed")
            log.warning("shadow read failed", resource=name, kind=kind, error=type(exc).__name__)
            return
        differences = compare(route, kind, served, shadow)
        self.stats.add(name, "compared")
        if not differences:
            self.stats.add(name, "matched")
            return
        self.stats.add(name, "differed")
        for key, fields in differences:
            self.stats.recent.append({"resource": name, "kind": kind, "key": key, "fields": list(fields)})
            log.warning("shadow read differs", resource=name, kind=kind, key=key, fields=list(fields))

    def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued comparison is done (tests, shutdown)."""
        q = self._queue
        if q is None:
            return
        done = threading.Event()

        def wait() -> None:
            q.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        done.wait(timeout_s)

    def stop(self) -> None:
        with self._lock:
            if self._queue is not None and self._thread is not None:
                with contextlib.suppress(queue.Full):
                    self._queue.put_nowait(None)
                self._thread.join(timeout=5)
            self._queue, self._thread = None, None
