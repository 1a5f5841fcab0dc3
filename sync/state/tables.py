"""Imports every module that declares state tables, so ``METADATA`` knows them all.

Migrations (``sync/state/migrations``) and their test compare against this full set:
a module that declares a state table must be listed here.
"""

from __future__ import annotations

from sync.state import audit, idempotency, sync_tables

__all__ = ("STATE_TABLE_MODULES",)

STATE_TABLE_MODULES = (audit, idempotency, sync_tables)
