"""Request-level retries: stamina with a backoff hook that honours ``Retry-After`` (STYLE C8).

A ``RateLimited`` error waits exactly what the destination asked (fractional
seconds allowed) plus a little jitter so several workers do not come back in
lock-step; other ``Retriable`` errors wait with exponential backoff and *full*
jitter (uniform between 0 and the exponential cap). Anything else is not retried.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import stamina

from sync.exceptions import RateLimited, Retriable

__all__ = ("BackoffHook", "retrying")


class BackoffHook:
    """stamina ``on=`` hook: seconds to wait, or False to give up at once."""

    def __init__(self, base: float = 0.25, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base, self.cap, self.rng = base, cap, rng or random.Random()
        self.calls = 0
        self.waits: list[float] = []

    def __call__(self, exc: Exception) -> bool | float:
        if not isinstance(exc, Retriable):
            return False
        self.calls += 1
        if isinstance(exc, RateLimited):
            wait = exc.retry_after + self.rng.uniform(0, min(1.0, exc.retry_after * 0.1 + 0.05))
        else:
            wait = self.rng.uniform(0, min(self.cap, self.base * 2**self.calls))
        self.waits.append(wait)
        return wait


def retrying(attempts: int, hook: BackoffHook | None = None) -> Iterator[Any]:
    """``for attempt in retrying(6): with attempt: ...`` — the stamina retry context with our hook."""
    return iter(stamina.retry_context(on=hook or BackoffHook(), attempts=attempts, timeout=None))
