"""Alert state and history, and per-destination grant status.

Revision ID: alerts_state
Revises: xeroauth_oauth_grants

``sync_alerts`` holds one row per (kind, subject) ever raised, whose ``active`` flag is
changed by compare-and-set so that several workers evaluating the same condition raise
(and clear) it once; ``sync_alert_events`` is the history of those changes with what
their delivery did; ``sync_grants`` says per destination whether its authorisation works
or must be reconnected (``sync/state/alerts.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "alerts_state"
down_revision = "xeroauth_oauth_grants"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sync_alerts",
        sa.Column("kind", sa.String(40), primary_key=True),
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("sync", sa.String(100)),
        sa.Column("destination", sa.String(100)),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("threshold", sa.Float),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
        sa.Column("since", _TS, nullable=False),
        sa.Column("evaluated_at", _TS, nullable=False),
    )
    op.create_table(
        "sync_alert_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("event", sa.String(10), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("delivery", sa.Text),
    )
    op.create_table(
        "sync_grants",
        sa.Column("destination", sa.String(100), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_grants")
    op.drop_table("sync_alert_events")
    op.drop_table("sync_alerts")
