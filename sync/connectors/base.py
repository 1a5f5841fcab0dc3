"""The Connector protocol: push a batch of planned records, get one result per record back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sync.exceptions import SyncError

__all__ = ("Connector", "OutRecord", "Outcome", "PushResult")

Outcome = Literal["retry", "split", "dead_letter", "fatal", "pause"]
"""What the engine does about one destination error code (each connector has its own table):

- ``retry``: transient, the same request may succeed after a backoff (never a dead letter);
- ``split``: the request is too big, send it again in smaller pieces;
- ``dead_letter``: the destination refused this record as it is (retried on later runs, then the DLQ);
- ``fatal``: nothing else in this run can succeed (credentials, a bug in our request);
- ``pause``: a quota is spent until a known time (Xero's day limit): stop the sync until then.
"""


@dataclass(frozen=True, slots=True)
class OutRecord:
    key: str
    """The legacy key (JSON text), also the external id the destination upserts by."""
    op: Literal["create", "update", "delete"]
    values: dict[str, Any]
    """Destination field -> value, already filtered by field ownership."""
    remote_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    send_id: str = ""
    """Names this one delivery attempt (run, outbox item, row version): idempotency keys derive from it,
    so request-level retries of the same send share a key and a later real change never does."""


@dataclass(frozen=True, slots=True)
class PushResult:
    key: str
    remote_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    error: SyncError | None = None
    request: dict[str, Any] | None = None
    """What was sent for this record (its part of the request), for the run's row-level outcomes."""
    answer: dict[str, Any] | None = None
    """What the destination answered for it (its part of the response)."""


class Connector(Protocol):
    max_batch: int
    """Records per ``push`` call the destination accepts in one request."""

    def push(self, records: list[OutRecord]) -> list[PushResult]:
        """Deliver the records; per-record failures are results, a run-ending failure raises Fatal."""
        ...

    def fetch(self, remote_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Current destination values (and ``updatedAt``) of records, for ``newest`` ownership."""
        ...
