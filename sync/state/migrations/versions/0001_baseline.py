"""Baseline: the state tables as ``create_all()`` made them before migrations existed.

Revision ID: 0001
Revises: (none)

Each table is created only if it is missing, so a store that an older Bridgehead
made with ``create_all()`` (all tables, or only the sync ones ``SyncStore.create``
made) joins the migration history here. Every later migration is plain: it may
rely on exactly the schema this one leaves.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _tables() -> dict[str, tuple[list[sa.schema.SchemaItem], list[tuple[str, list[str]]]]]:
    """Table name -> (columns and constraints, [(index name, columns)])."""
    counts = [
        sa.Column(f"{stage}_{op_}", sa.Integer, nullable=False)
        for stage in ("planned", "done")
        for op_ in ("creates", "updates", "deletes")
    ]
    return {
        "audit": (
            [
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("at", sa.String(32), nullable=False),
                sa.Column("subject", sa.String(255)),
                sa.Column("request_id", sa.String(128)),
                sa.Column("version", sa.String(32), nullable=False),
                sa.Column("resource", sa.String(128), nullable=False),
                sa.Column("key", sa.Text, nullable=False),
                sa.Column("action", sa.String(64), nullable=False),
                sa.Column("status", sa.Integer, nullable=False),
                sa.Column("before", sa.Text),
                sa.Column("after", sa.Text),
            ],
            [("ix_audit_at", ["at"]), ("ix_audit_resource", ["resource"])],
        ),
        "idempotency_keys": (
            [
                sa.Column("owner", sa.String(255), primary_key=True),
                sa.Column("key", sa.String(255), primary_key=True),
                sa.Column("fingerprint", sa.String(64), nullable=False),
                sa.Column("state", sa.String(8), nullable=False),
                sa.Column("status", sa.Integer),
                sa.Column("headers", sa.Text),
                sa.Column("body", sa.LargeBinary),
                sa.Column("expires_at", sa.Float, nullable=False),
            ],
            [("ix_idempotency_keys_expires_at", ["expires_at"])],
        ),
        "sync_cursors": (
            [
                sa.Column("sync", sa.String(100), primary_key=True),
                sa.Column("cursor", sa.Text, nullable=False),
                sa.Column("updated_at", _TS, nullable=False),
            ],
            [],
        ),
        "sync_fingerprints": (
            [
                sa.Column("sync", sa.String(100), primary_key=True),
                sa.Column("key", sa.String(400), primary_key=True),
                sa.Column("fingerprint", sa.String(32), nullable=False),
            ],
            [],
        ),
        "sync_seen": (
            [
                sa.Column("sync", sa.String(100), primary_key=True),
                sa.Column("key", sa.String(400), primary_key=True),
            ],
            [],
        ),
        "sync_id_map": (
            [
                sa.Column("sync", sa.String(100), primary_key=True),
                sa.Column("key", sa.String(400), primary_key=True),
                sa.Column("remote_id", sa.String(200), nullable=False),
                sa.Column("extra", sa.Text, nullable=False, server_default="{}"),
                sa.Column("sent", sa.Text, nullable=False, server_default="{}"),
                sa.Column("updated_at", _TS, nullable=False),
            ],
            [],
        ),
        "sync_runs": (
            [
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("sync", sa.String(100), nullable=False),
                sa.Column("status", sa.String(20), nullable=False),
                sa.Column("worker", sa.String(100), nullable=False),
                sa.Column("dry_run", sa.Boolean, nullable=False),
                sa.Column("started_at", _TS, nullable=False),
                sa.Column("finished_at", _TS),
                *counts,
                sa.Column("failed", sa.Integer, nullable=False),
                sa.Column("dead_lettered", sa.Integer, nullable=False),
                sa.Column("conflicts", sa.Integer, nullable=False),
                sa.Column("error", sa.Text),
            ],
            [("ix_sync_runs_sync", ["sync"])],
        ),
        "sync_outbox": (
            [
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("sync", sa.String(100), nullable=False),
                sa.Column("key", sa.String(400), nullable=False),
                sa.Column("op", sa.String(10), nullable=False),
                sa.Column("row", sa.Text),
                sa.Column("fingerprint", sa.String(32)),
                sa.Column("changed_at", _TS),
                sa.Column("attempts", sa.Integer, nullable=False),
                sa.Column("last_error", sa.Text),
                sa.Column("not_before_run", sa.Integer, nullable=False),
                sa.Column("lease_owner", sa.String(100)),
                sa.Column("lease_until", _TS),
                sa.UniqueConstraint("sync", "key", name="uq_sync_outbox_key"),
            ],
            [],
        ),
        "sync_record_errors": (
            [
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("run_id", sa.Integer, nullable=False),
                sa.Column("sync", sa.String(100), nullable=False),
                sa.Column("key", sa.String(400), nullable=False),
                sa.Column("error", sa.Text, nullable=False),
                sa.Column("at", _TS, nullable=False),
            ],
            [("ix_sync_record_errors_run_id", ["run_id"])],
        ),
        "sync_dlq": (
            [
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
            ],
            [],
        ),
        "sync_conflicts": (
            [
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("run_id", sa.Integer, nullable=False),
                sa.Column("sync", sa.String(100), nullable=False),
                sa.Column("key", sa.String(400), nullable=False),
                sa.Column("field", sa.String(100), nullable=False),
                sa.Column("legacy_value", sa.Text),
                sa.Column("remote_value", sa.Text),
                sa.Column("winner", sa.String(20), nullable=False),
                sa.Column("at", _TS, nullable=False),
            ],
            [],
        ),
        "sync_controls": (
            [
                sa.Column("sync", sa.String(100), primary_key=True),
                sa.Column("paused", sa.Boolean, nullable=False),
                sa.Column("plan_owner", sa.String(100)),
                sa.Column("plan_until", _TS),
                sa.Column("consecutive_failures", sa.Integer, nullable=False),
            ],
            [],
        ),
    }


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, (items, indexes) in _tables().items():
        if name in existing:
            continue
        op.create_table(name, *items)
        for index, columns in indexes:
            op.create_index(index, name, columns)


def downgrade() -> None:
    for name in reversed(list(_tables())):
        op.drop_table(name)
