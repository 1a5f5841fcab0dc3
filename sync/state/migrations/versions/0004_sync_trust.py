"""Sync trust: per-pass seen sets, transient backoff, skipped records, a shared rate budget.

Revision ID: 0004
Revises: 0003

- ``sync_seen`` is keyed by pass as well (``pass_id``): an overlapping pass whose lease lapsed
  never sees another pass's marks, so it cannot plan deletes for rows that exist. It is scratch
  space for a pass in progress, so it is rebuilt rather than altered (a pass running across the
  upgrade loses its lease anyway).
- ``sync_outbox`` counts transient retries and unsettled claims and keeps a next-attempt time;
  ``sync_controls`` names the pass holding the planning lease; ``sync_runs`` counts skipped records.
- ``sync_skipped`` keeps records given a final outcome without a write (an orphaned stock row);
  ``sync_rate_budgets`` is a destination's cost bucket as every worker sees it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_table("sync_seen")
    op.create_table(
        "sync_seen",
        sa.Column("sync", sa.String(100), primary_key=True),
        sa.Column("pass_id", sa.String(40), primary_key=True),
        sa.Column("key", sa.String(400), primary_key=True),
    )
    with op.batch_alter_table("sync_outbox") as table:
        table.add_column(sa.Column("retries", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("claims", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("next_attempt_at", _TS))
    with op.batch_alter_table("sync_controls") as table:
        table.add_column(sa.Column("plan_pass", sa.String(40)))
    with op.batch_alter_table("sync_runs") as table:
        table.add_column(sa.Column("skipped", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "sync_skipped",
        sa.Column("sync", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("fingerprint", sa.String(32)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_table(
        "sync_rate_budgets",
        sa.Column("bucket", sa.String(300), primary_key=True),
        sa.Column("maximum", sa.Float, nullable=False),
        sa.Column("available", sa.Float, nullable=False),
        sa.Column("restore_rate", sa.Float, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("observed", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_rate_budgets")
    op.drop_table("sync_skipped")
    with op.batch_alter_table("sync_runs") as table:
        table.drop_column("skipped")
    with op.batch_alter_table("sync_controls") as table:
        table.drop_column("plan_pass")
    with op.batch_alter_table("sync_outbox") as table:
        table.drop_column("next_attempt_at")
        table.drop_column("claims")
        table.drop_column("retries")
    op.drop_table("sync_seen")
    op.create_table(
        "sync_seen",
        sa.Column("sync", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(400), primary_key=True),
    )
