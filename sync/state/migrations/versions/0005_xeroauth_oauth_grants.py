"""OAuth grants (Xero): sealed tokens, one row per connection, locked while a refresh runs.

Revision ID: xeroauth_oauth_grants
Revises: 0004

``bh_oauth_grants`` holds each connection's tokens sealed with the keys in
``BRIDGEHEAD_TOKEN_KEYS`` (``sync/state/oauth_grants.py``), its tenant, and a ``status`` that
turns ``reconnect`` when the provider refuses the grant, so ``sync status`` can say so.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "xeroauth_oauth_grants"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bh_oauth_grants",
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("tenant_name", sa.String(255)),
        sa.Column("access_token", sa.Text, nullable=False),
        sa.Column("refresh_token", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("refreshes", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bh_oauth_grants")
