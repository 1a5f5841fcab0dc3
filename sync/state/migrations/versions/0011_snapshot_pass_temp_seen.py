"""Drop ``sync_seen``: a snapshot pass keeps the keys it saw in a temporary table of its own connection.

Revision ID: snapshot_pass_temp_seen
Revises: ops_outbox_enqueued_at

The marks were scratch space of a pass in progress (``sync/state/snapshot_pass.py`` says why
a temporary table is both faster and safer). A pass of an older version still running
across the upgrade fails at its next mark, before it could plan a delete, and is abandoned.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "snapshot_pass_temp_seen"
down_revision = "ops_outbox_enqueued_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("sync_seen")


def downgrade() -> None:
    op.create_table(
        "sync_seen",
        sa.Column("sync", sa.String(100), primary_key=True),
        sa.Column("pass_id", sa.String(40), primary_key=True),
        sa.Column("key", sa.String(400), primary_key=True),
    )
