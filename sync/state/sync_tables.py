"""The sync engine's tables in the state store: cursors, fingerprints, id map, runs, outbox, errors, DLQ.

Keys are a sync's legacy key encoded as JSON text (``["I0001"]``, ``["I0001","W01"]``)
so composite keys need no extra columns. JSON payloads are text, not a JSON type,
so the same schema works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from sync.state.redacted import RedactedText
from sync.state.store import METADATA
from sync.state.utc import UtcDateTime

__all__ = (
    "API_USAGE",
    "CONFLICTS",
    "CONTROLS",
    "CURSORS",
    "DESTINATION_HOLDS",
    "DLQ",
    "FINGERPRINTS",
    "ID_MAP",
    "OUTBOX",
    "RATE_BUDGETS",
    "RECORD_ERRORS",
    "RUNS",
    "SKIPPED",
    "SYNC_TABLES",
)

_TS = UtcDateTime()

CURSORS = sa.Table(
    "sync_cursors",
    METADATA,
    sa.Column("sync", sa.String(100), primary_key=True),
    sa.Column("cursor", sa.Text, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
)

FINGERPRINTS = sa.Table(
    "sync_fingerprints",
    METADATA,
    sa.Column("sync", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(400), primary_key=True),
    # Fingerprint of the row as last *delivered*: a row not yet delivered keeps differing.
    sa.Column("fingerprint", sa.String(32), nullable=False),
)

ID_MAP = sa.Table(
    "sync_id_map",
    METADATA,
    sa.Column("sync", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("remote_id", sa.String(200), nullable=False),
    sa.Column("extra", sa.Text, nullable=False, server_default="{}"),
    # The destination values we last sent: sample diffs and "did the shop change it since?" for `newest`.
    sa.Column("sent", sa.Text, nullable=False, server_default="{}"),
    sa.Column("updated_at", _TS, nullable=False),
)

RUNS = sa.Table(
    "sync_runs",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sync", sa.String(100), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("worker", sa.String(100), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
    sa.Column("started_at", _TS, nullable=False),
    sa.Column("finished_at", _TS),
    *(
        sa.Column(f"{stage}_{op}", sa.Integer, nullable=False, default=0)
        for stage in ("planned", "done")
        for op in ("creates", "updates", "deletes")
    ),
    sa.Column("failed", sa.Integer, nullable=False, default=0),
    sa.Column("dead_lettered", sa.Integer, nullable=False, default=0),
    sa.Column("conflicts", sa.Integer, nullable=False, default=0),
    # Records given a final outcome without a write (a stock row whose item is not in the shop).
    sa.Column("skipped", sa.Integer, nullable=False, default=0),
    sa.Column("error", RedactedText()),
)

OUTBOX = sa.Table(
    "sync_outbox",
    METADATA,
    # Planned work that survives a crash: a record leaves only when delivered or dead-lettered.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sync", sa.String(100), nullable=False),
    sa.Column("key", sa.String(400), nullable=False),
    sa.Column("op", sa.String(10), nullable=False),
    sa.Column("row", sa.Text),
    sa.Column("fingerprint", sa.String(32)),
    sa.Column("changed_at", _TS),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", RedactedText()),
    sa.Column("not_before_run", sa.Integer, nullable=False, default=0),
    # Transient failures (5xx, 429, timeouts, THROTTLED): never spend attempts, back off across runs.
    sa.Column("retries", sa.Integer, nullable=False, default=0),
    # Claims not settled by a known outcome (refused, never sent): above 1, an earlier attempt may have
    # been applied (a worker killed after the shop took the write), so "gone" or "unchanged" proves nothing.
    sa.Column("claims", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", _TS),
    sa.Column("lease_owner", sa.String(100)),
    sa.Column("lease_until", _TS),
    # When the record was first planned: the sync's lag is the age of the oldest one still here
    # (a re-plan keeps it; NULL for records planned before the column existed).
    sa.Column("enqueued_at", _TS),
    sa.UniqueConstraint("sync", "key", name="uq_sync_outbox_key"),
)

RECORD_ERRORS = sa.Table(
    "sync_record_errors",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False, index=True),
    sa.Column("sync", sa.String(100), nullable=False),
    sa.Column("key", sa.String(400), nullable=False),
    sa.Column("error", RedactedText(), nullable=False),
    sa.Column("at", _TS, nullable=False),
)

DLQ = sa.Table(
    "sync_dlq",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sync", sa.String(100), nullable=False),
    sa.Column("key", sa.String(400), nullable=False),
    sa.Column("op", sa.String(10), nullable=False),
    sa.Column("row", sa.Text),
    sa.Column("fingerprint", sa.String(32)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", RedactedText(), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.UniqueConstraint("sync", "key", name="uq_sync_dlq_key"),
)

CONFLICTS = sa.Table(
    "sync_conflicts",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("sync", sa.String(100), nullable=False),
    sa.Column("key", sa.String(400), nullable=False),
    sa.Column("field", sa.String(100), nullable=False),
    sa.Column("legacy_value", sa.Text),
    sa.Column("remote_value", sa.Text),
    sa.Column("winner", sa.String(20), nullable=False),
    sa.Column("at", _TS, nullable=False),
)

CONTROLS = sa.Table(
    "sync_controls",
    METADATA,
    sa.Column("sync", sa.String(100), primary_key=True),
    sa.Column("paused", sa.Boolean, nullable=False, default=False),
    # Only one worker plans (detects changes) at a time; all of them may push.
    sa.Column("plan_owner", sa.String(100)),
    sa.Column("plan_until", _TS),
    # The pass holding the lease: a lapsed pass cannot renew (or plan deletes) once another took over.
    sa.Column("plan_pass", sa.String(40)),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, default=0),
)

SKIPPED = sa.Table(
    "sync_skipped",
    METADATA,
    # A final outcome without a write, kept with the fingerprint it was given for: the same row
    # is not planned again until it changes or what it waited for (its parent record) exists.
    sa.Column("sync", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("fingerprint", sa.String(32)),
    sa.Column("reason", RedactedText(), nullable=False),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("at", _TS, nullable=False),
)

RATE_BUDGETS = sa.Table(
    "sync_rate_budgets",
    METADATA,
    # A destination's rate budget (Shopify's cost bucket) as every worker sees it: points are taken
    # with a compare-and-set update, and each answer's throttleStatus corrects the estimate.
    sa.Column("bucket", sa.String(300), primary_key=True),
    sa.Column("maximum", sa.Float, nullable=False),
    sa.Column("available", sa.Float, nullable=False),
    sa.Column("restore_rate", sa.Float, nullable=False),
    sa.Column("at", sa.Float, nullable=False),  # epoch seconds of ``available``
    sa.Column("observed", sa.Boolean, nullable=False, default=False),
)

DESTINATION_HOLDS = sa.Table(
    "sync_destination_holds",
    METADATA,
    # A destination no request may reach before ``until`` (Xero's day limit spent): every sync
    # writing to it, on every worker, pauses until then instead of burning retries.
    sa.Column("destination", sa.String(100), primary_key=True),
    sa.Column("until", _TS, nullable=False),
    sa.Column("reason", RedactedText(), nullable=False),
)

API_USAGE = sa.Table(
    "sync_api_usage",
    METADATA,
    # Calls and bytes per destination account (``xero:<tenant id>``) per UTC day: Xero meters
    # egress on paid tiers, and its day limit is per tenant.
    sa.Column("account", sa.String(300), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("bytes_in", sa.BigInteger, nullable=False),
    sa.Column("bytes_out", sa.BigInteger, nullable=False),
)

SYNC_TABLES = (
    CURSORS, FINGERPRINTS, ID_MAP, RUNS, OUTBOX, RECORD_ERRORS, DLQ, CONFLICTS, CONTROLS, SKIPPED, RATE_BUDGETS,
    DESTINATION_HOLDS, API_USAGE,
)  # fmt: skip
"""Every table the sync engine owns (the schema itself comes from ``sync/state/migrations``)."""
