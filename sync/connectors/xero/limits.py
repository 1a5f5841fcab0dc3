"""Client-side pacing of one Xero tenant: wait *before* the minute limit, never more than 5 in flight.

Xero allows a tenant 60 calls in a rolling minute, 5 at once and 5,000 a day (and an app 10,000 a
minute), and says after every call what is left: ``X-MinLimit-Remaining``, ``X-AppMinLimit-Remaining``,
``X-DayLimit-Remaining``. ``TenantLimits`` keeps the last figure the server gave, counts down the
calls it lets go since, and counts a slot back when one of its own calls leaves the rolling minute.
When only ``reserve`` calls are left it sleeps until its oldest call of the minute expires, so a
well-behaved sync sees no minute 429 at all. Several processes on one tenant each read the same
headers, so they slow down together; a 429 that still happens is retried after its Retry-After.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

__all__ = ("WINDOW_S", "TenantLimits")

WINDOW_S = 60.0
_PROBE_S = 5.0
"""With nothing of ours in the window to wait for (other clients used it), look again after this."""


class TenantLimits:
    def __init__(
        self,
        *,
        concurrency: int = 5,
        per_minute: int = 60,
        reserve: int = 1,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots = threading.BoundedSemaphore(concurrency)
        self.per_minute, self.reserve = per_minute, reserve
        self.sleep, self.clock = sleep, clock
        self.minute_left: int | None = None
        self.app_left: int | None = None
        self.day_left: int | None = None
        self.sent: deque[float] = deque()
        self.waits: list[float] = []
        self._lock = threading.Lock()

    @contextmanager
    def call(self) -> Iterator[None]:
        """Hold a concurrency slot and a place in the minute for one request."""
        self.before()
        with self.slots:
            yield

    def before(self) -> None:
        while True:
            with self._lock:
                now = self.clock()
                while self.sent and self.sent[0] <= now - WINDOW_S:
                    self.sent.popleft()
                    if self.minute_left is not None:  # one of our calls left the window: its slot is back
                        self.minute_left = min(self.per_minute, self.minute_left + 1)
                known = (self.minute_left, self.app_left, self.per_minute - len(self.sent))
                left = min(x for x in known if x is not None)
                if left > self.reserve:
                    self.sent.append(now)
                    if self.minute_left is not None:
                        self.minute_left -= 1
                    if self.app_left is not None:
                        self.app_left -= 1
                    return
                wait = self.sent[0] + WINDOW_S - now if self.sent else _PROBE_S
                if not self.sent and self.minute_left is not None:
                    self.minute_left = self.reserve + 1  # probe once; the answer's header says more
            wait = max(0.05, wait)
            self.waits.append(wait)
            self.sleep(wait)

    def after(self, response: httpx.Response) -> None:
        """Take the server's figures from any answer that carries them (429s too)."""
        with self._lock:
            for header, attr in (("X-MinLimit-Remaining", "minute_left"), ("X-AppMinLimit-Remaining", "app_left"),
                                 ("X-DayLimit-Remaining", "day_left")):  # fmt: skip
                value = response.headers.get(header)
                if value is not None and value.strip().isdigit():
                    setattr(self, attr, int(value))
