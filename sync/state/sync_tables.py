"""The sync engine's tables in the state store: cursors, fingerprints, id map, runs, outbox, errors, DLQ.

Keys are a sync's legacy key encoded as JSON text (``["I0001"]``, ``["I0001","W01"]``)
so composite keys need no extra columns. JSON payloads are text, not a JSON type,
so the same schema works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from sync.state.store import METADATA

__all__ = (
    "CONFLICTS",
    "CONTROLS",
    "CURSORS",
    "DLQ",
    "FINGERPRINTS",
    "ID_MAP",
    "OUTBOX",
    "RECORD_ERRORS",
    "RUNS",
    "SEEN",
    "SYNC_TABLES",
)

_TS = sa.DateTime(timezone=True)

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

SEEN = sa.Table(
    "sync_seen",
    METADATA,
    # Scratch space of one snapshot diff: keys seen in the source, anti-joined to find deletes.
    sa.Column("sync", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(400), primary_key=True),
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
    sa.Column("error", sa.Text),
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
    sa.Column("last_error", sa.Text),
    sa.Column("not_before_run", sa.Integer, nullable=False, default=0),
    sa.Column("lease_owner", sa.String(100)),
    sa.Column("lease_until", _TS),
    sa.UniqueConstraint("sync", "key", name="uq_sync_outbox_key"),
)

RECORD_ERRORS = sa.Table(
    "sync_record_errors",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False, index=True),
    sa.Column("sync", sa.String(100), nullable=False),
    sa.Column("key", sa.String(400), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
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
    sa.Column("last_error", sa.Text, nullable=False),
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
    sa.Column("consecutive_failures", sa.Integer, nullable=False, default=0),
)

SYNC_TABLES = (CURSORS, FINGERPRINTS, SEEN, ID_MAP, RUNS, OUTBOX, RECORD_ERRORS, DLQ, CONFLICTS, CONTROLS)
"""Every table the sync engine owns (the schema itself comes from ``sync/state/migrations``)."""
