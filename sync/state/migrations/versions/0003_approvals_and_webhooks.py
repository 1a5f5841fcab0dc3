"""Run plans and approvals (the risky-run gate), and the inbound webhook queue.

Revision ID: 0003
Revises: 0002

``sync_run_plans`` keeps what each planning pass saw (rows read, a hash of the sync's
definition), so a run can be compared with recent ones; ``sync_approvals`` holds a run
stopped in ``awaiting_approval`` with its planned diff and who decided (``sync/approval.py``).
``bh_webhook_events`` is the durable queue of verified deliveries, unique per provider event,
and ``bh_webhook_objects`` the newest event applied per remote object
(``sync/webhooks/queue.py``).

Like the baseline, each table is created only if missing: stores made by ``create_all()``
builds from before migrations already hold some of them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _missing("sync_run_plans"):
        _create_run_plans()
    if _missing("sync_approvals"):
        _create_approvals()
    if _missing("bh_webhook_events"):
        _create_webhook_events()
    if _missing("bh_webhook_objects"):
        _create_webhook_objects()


def _create_run_plans() -> None:
    op.create_table(
        "sync_run_plans",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("sync", sa.String(100), nullable=False),
        sa.Column("source_rows", sa.Integer),
        sa.Column("spec_hash", sa.String(32), nullable=False),
    )
    op.create_index("ix_sync_run_plans_sync", "sync_run_plans", ["sync"])


def _create_approvals() -> None:
    op.create_table(
        "sync_approvals",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("sync", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("decision", sa.String(10)),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_at", _TS),
    )
    op.create_index("ix_sync_approvals_sync", "sync_approvals", ["sync"])


def _create_webhook_events() -> None:
    op.create_table(
        "bh_webhook_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("object_id", sa.String(255)),
        sa.Column("occurred_at", sa.String(40), nullable=False),
        sa.Column("received_at", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("lease_until", sa.Float),
        sa.Column("finished_at", sa.String(40)),
        sa.UniqueConstraint("source", "event_id", name="uq_bh_webhook_event"),
    )
    op.create_index("ix_bh_webhook_events_status", "bh_webhook_events", ["status"])


def _create_webhook_objects() -> None:
    op.create_table(
        "bh_webhook_objects",
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("object_id", sa.String(255), primary_key=True),
        sa.Column("last_event_at", sa.String(40), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bh_webhook_objects")
    op.drop_index("ix_bh_webhook_events_status", "bh_webhook_events")
    op.drop_table("bh_webhook_events")
    op.drop_index("ix_sync_approvals_sync", "sync_approvals")
    op.drop_table("sync_approvals")
    op.drop_index("ix_sync_run_plans_sync", "sync_run_plans")
    op.drop_table("sync_run_plans")
