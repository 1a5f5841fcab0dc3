"""The operator's console: row-level run outcomes and the gateway's requests per minute.

Revision ID: console_outcomes
Revises: aggmcp_audit_via

- ``sync_record_outcomes`` keeps, per run and record, the outcome, the request sent and the
  destination's answer (secrets redacted), for ``sync.outcome_retention_days``;
- ``gateway_request_buckets`` counts the gateway's requests per minute and status class
  (a rolling 48 hours) for the console's chart, shared by every worker process.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "console_outcomes"
down_revision = "aggmcp_audit_via"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sync_record_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("sync", sa.String(100), nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("request", sa.Text),
        sa.Column("answer", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_sync_record_outcomes_run_id", "sync_record_outcomes", ["run_id"])
    op.create_index("ix_sync_record_outcomes_at", "sync_record_outcomes", ["at"])
    op.create_table(
        "gateway_request_buckets",
        sa.Column("minute", _TS, primary_key=True),
        sa.Column("status_class", sa.String(3), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gateway_request_buckets")
    op.drop_index("ix_sync_record_outcomes_at", "sync_record_outcomes")
    op.drop_index("ix_sync_record_outcomes_run_id", "sync_record_outcomes")
    op.drop_table("sync_record_outcomes")
