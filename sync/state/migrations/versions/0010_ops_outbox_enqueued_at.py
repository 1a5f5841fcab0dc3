"""When each outbox record was first planned: the sync lag metric is the age of the oldest.

Revision ID: ops_outbox_enqueued_at
Revises: console_outcomes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ops_outbox_enqueued_at"
down_revision = "console_outcomes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_outbox") as batch:
        batch.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("sync_outbox") as batch:
        batch.drop_column("enqueued_at")
