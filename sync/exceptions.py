"""Errors of the sync package, in the three families the engine acts on (STYLE C3).

BridgeheadError
└── SyncError
    ├── Retriable             try the same request again after a backoff
    │   └── RateLimited       the destination said when: ``retry_after`` seconds (fractional allowed)
    ├── Skippable             this record cannot go now: record the error, dead-letter it past its budget
    │   └── Deferred          waits on another record (a product not synced yet); no budget spent
    ├── Fatal                 the run cannot go on (bad credentials, bad config): stop it
    ├── QuotaExhausted        a quota is spent until ``until`` (Xero's day limit): hold the destination
    └── LeaseLost             this worker's planning pass was taken over: stop planning, keep pushing
"""

from __future__ import annotations

import datetime as dt

from legacy_adapters.exceptions import BridgeheadError

__all__ = (
    "Deferred",
    "Fatal",
    "LeaseLost",
    "QuotaExhausted",
    "RateLimited",
    "Retriable",
    "Skippable",
    "SyncError",
)


class SyncError(BridgeheadError):
    """Root of the sync package's errors."""


class Retriable(SyncError):
    """A transient failure (5xx, timeout, dropped connection): the same request may succeed later."""


class RateLimited(Retriable):
    """The destination throttled us and said how long to wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Skippable(SyncError):
    """The destination refused this one record (validation, ``userErrors``); others go on."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class Deferred(Skippable):
    """The record depends on another one that has not reached the destination yet."""


class Fatal(SyncError):
    """Nothing else in this run can succeed (401, unknown destination object): abort the run."""


class LeaseLost(SyncError):
    """A detection pass outlived its planning lease and another worker took it: plan nothing more."""


class QuotaExhausted(SyncError):
    """No request can succeed before ``until`` (UTC): the sync pauses instead of burning retries."""

    def __init__(self, message: str, until: dt.datetime) -> None:
        super().__init__(message)
        self.until = until
