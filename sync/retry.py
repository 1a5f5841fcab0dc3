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

__all__ = ("RUN_BACKOFF_BASE_S", "RUN_BACKOFF_CAP_S", "BackoffHook", "next_attempt_in", "retrying")

RUN_BACKOFF_BASE_S = 2.0
RUN_BACKOFF_CAP_S = 120.0
"""Across runs a record that failed transiently waits 2, 4, 8 … s, at most two minutes: a shop that
was down for a minute and a half is written again within about a minute of coming back."""


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


def next_attempt_in(retries: int, exc: Exception | None = None, rng: random.Random | None = None) -> float:
    """Seconds before a record that failed transiently ``retries`` times (this one included) is tried again.

    Exponential with "equal jitter" (half fixed, half random) so it really waits and
    workers spread out; never sooner than a ``Retry-After`` the destination gave.
    """
    rng = rng or random.Random()
    ceiling = min(RUN_BACKOFF_CAP_S, RUN_BACKOFF_BASE_S * 2 ** max(0, retries - 1))
    wait = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if isinstance(exc, RateLimited):
        wait = max(wait, exc.retry_after)
    return wait
