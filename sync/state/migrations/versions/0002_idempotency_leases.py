"""Idempotency keys get a holder token and a short lease, and the ``committing`` state.

Revision ID: 0002
Revises: 0001

A claim now carries who holds it (``token``) and until when (``lease_until``), so a
crashed holder frees its key within the lease instead of the 24 h TTL, and a holder
presumed dead cannot commit behind its successor (``sync/state/idempotency.py``).
``state`` grows to fit ``committing``. Rows claimed before this migration have no
lease: they count as expired, which is what a claim from before a restart is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as table:
        table.alter_column("state", existing_type=sa.String(8), type_=sa.String(10), existing_nullable=False)
        table.add_column(sa.Column("token", sa.String(32)))
        table.add_column(sa.Column("lease_until", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as table:
        table.drop_column("lease_until")
        table.drop_column("token")
        table.alter_column("state", existing_type=sa.String(10), type_=sa.String(8), existing_nullable=False)
