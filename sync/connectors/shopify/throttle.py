"""Client-side pacing from ``extensions.cost.throttleStatus``: wait *before* the bucket runs dry.

Every Shopify GraphQL response says how many points are left and how fast they
come back. Before a request of estimated cost C the throttle projects the bucket
forward to now and sleeps just long enough for C points to be there, so a
well-behaved client almost never sees ``THROTTLED``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ("CostThrottle",)


class CostThrottle:
    def __init__(
        self, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.sleep, self.clock = sleep, clock
        self.available: float | None = None
        self.maximum = 1000.0
        self.restore_rate = 50.0
        self._at = 0.0
        self.waited = 0.0
        self._lock = threading.Lock()

    def before(self, cost: float) -> None:
        """Block until ``cost`` points should be available."""
        with self._lock:
            if self.available is None:
                return  # nothing known yet: the first answer tells us
            projected = min(self.maximum, self.available + (self.clock() - self._at) * self.restore_rate)
            missing = min(cost, self.maximum) - projected
            if missing > 0:
                wait = missing / self.restore_rate
                self.waited += wait
                self.sleep(wait)

    def after(self, extensions: dict[str, Any] | None) -> None:
        status = ((extensions or {}).get("cost") or {}).get("throttleStatus")
        if status:
            with self._lock:
                self.available = float(status["currentlyAvailable"])
                self.maximum = float(status["maximumAvailable"])
                self.restore_rate = float(status["restoreRate"]) or 1.0
                self._at = self.clock()

    def restore_time(self, cost: float) -> float:
        """Seconds until ``cost`` points are back, from the last known status (THROTTLED answers)."""
        available = self.available or 0.0
        return max(0.0, (min(cost, self.maximum) - available) / self.restore_rate)
