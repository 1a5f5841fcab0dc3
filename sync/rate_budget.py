"""A destination's rate budget shared by every worker: Shopify's cost bucket kept in the state store.

Two workers pacing on their own view of one bucket each think they have all of it:
they overdraw it together and the shop answers ``THROTTLED`` in storms.
``SharedCostThrottle`` has the interface of ``CostThrottle`` (``before``/``after``/
``restore_time``) but takes points from one row per shop in the state store
(``take_budget``, a compare-and-set) and corrects that row with every
``throttleStatus`` the shop sends back (``observe_budget``). Until the first answer it
assumes the smallest plan (1,000 points, 50 restored per second).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sync.state.base import StateStore

__all__ = ("SharedCostThrottle",)

_MAX_SLEEP = 2.0
"""Wait at most this long before asking the bucket again: another worker's answer may say more is there."""


class SharedCostThrottle:
    def __init__(
        self,
        store: StateStore,
        bucket: str,
        *,
        maximum: float = 1000.0,
        restore_rate: float = 50.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.bucket, self.sleep, self.clock = store, bucket, sleep, clock
        self.maximum, self.restore_rate = maximum, restore_rate
        self.available: float | None = None
        self.waited = 0.0

    def before(self, cost: float) -> None:
        """Block until ``cost`` points are taken from the shared bucket."""
        while True:
            wait = self.store.take_budget(
                self.bucket, cost, maximum=self.maximum, restore_rate=self.restore_rate, now=self.clock()
            )
            if wait <= 0:
                return
            wait = min(wait, _MAX_SLEEP)
            self.waited += wait
            self.sleep(wait)

    def after(self, extensions: dict[str, Any] | None) -> None:
        status = ((extensions or {}).get("cost") or {}).get("throttleStatus")
        if not status:
            return
        self.maximum = float(status["maximumAvailable"])
        self.restore_rate = float(status["restoreRate"]) or 1.0
        self.available = float(status["currentlyAvailable"])
        self.store.observe_budget(
            self.bucket, maximum=self.maximum, available=self.available, restore_rate=self.restore_rate,
            now=self.clock(),
        )  # fmt: skip

    def restore_time(self, cost: float) -> float:
        """Seconds until ``cost`` points are back, from the last status the shop sent (THROTTLED answers)."""
        available = self.available or 0.0
        return max(0.0, (min(cost, self.maximum) - available) / self.restore_rate)
