"""The state store: idempotency keys, audit trail, and the sync engine's cursors, maps, runs and DLQ."""

from __future__ import annotations

from sync.state.store import METADATA, StateDatabase

__all__ = ("METADATA", "StateDatabase")
