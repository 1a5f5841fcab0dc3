"""Destination holds (a spent day limit pauses every sync of the destination) and API usage per day.

Revision ID: xero_holds_and_usage
Revises: alerts_state
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "xero_holds_and_usage"
down_revision = "alerts_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_destination_holds",
        sa.Column("destination", sa.String(100), primary_key=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "sync_api_usage",
        sa.Column("account", sa.String(300), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("bytes_in", sa.BigInteger, nullable=False),
        sa.Column("bytes_out", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_api_usage")
    op.drop_table("sync_destination_holds")
