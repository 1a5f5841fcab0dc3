"""Audit entries say how a write arrived: ``via`` is ``mcp:<tool>`` for an AI agent's tool call.

Revision ID: aggmcp_audit_via
Revises: xero_holds_and_usage
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "aggmcp_audit_via"
down_revision = "xero_holds_and_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("via", sa.String(160), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("via")
