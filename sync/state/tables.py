"""Imports every module that declares state tables, so ``StateDatabase.create_all`` creates them all."""

from __future__ import annotations

from sync.state import approvals, audit, idempotency, sync_tables  # noqa: F401

__all__: tuple[str, ...] = ()
