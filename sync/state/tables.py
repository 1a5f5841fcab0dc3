"""Imports every module that declares state tables, so ``METADATA`` knows them all.

Migrations (``sync/state/migrations``) and their test compare against this full set:
a module that declares a state table must be listed here.
"""

from __future__ import annotations

# The webhook queue declares its tables beside its code (sync/webhooks/queue.py).
from sync.state import alerts, approvals, audit, idempotency, oauth_grants, outcomes, request_series, sync_tables
from sync.webhooks import queue as webhook_queue

__all__ = ("STATE_TABLE_MODULES",)

STATE_TABLE_MODULES = (
    alerts, approvals, audit, idempotency, oauth_grants, outcomes, request_series, sync_tables, webhook_queue,
)  # fmt: skip
