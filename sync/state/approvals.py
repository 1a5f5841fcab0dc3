"""What a run planned (for the approval gate) and the human decisions on risky runs.

Two tables, mixed into ``SyncStore`` as ``ApprovalLog``:

- ``sync_run_plans``: per run, the source rows a full pass read and the hash of the
  sync's definition, so later runs can compare record counts and notice a mapping change;
- ``sync_approvals``: a run stopped in ``awaiting_approval`` with its reason and planned
  diff, then who approved or rejected it and when. A sync with an undecided approval
  sends nothing until a human decides.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import sqlalchemy as sa

from sync.state.redacted import RedactedText
from sync.state.store import METADATA
from sync.state.sync_tables import CURSORS, OUTBOX, RUNS

__all__ = ("APPROVALS", "APPROVAL_TABLES", "RUN_PLANS", "ApprovalLog", "NotAwaitingApproval")

_TS = sa.DateTime(timezone=True)
PROCEEDED = ("succeeded", "partially_failed", "failed")
"""Runs that went past the gate: their definition hash is the one in force."""
COMPLETED = ("succeeded", "partially_failed")
"""Runs whose record count is a fair sample of the source."""

RUN_PLANS = sa.Table(
    "sync_run_plans",
    METADATA,
    sa.Column("run_id", sa.Integer, primary_key=True),
    sa.Column("sync", sa.String(100), nullable=False, index=True),
    sa.Column("source_rows", sa.Integer),  # rows a full pass read; NULL for incremental detectors
    sa.Column("spec_hash", sa.String(32), nullable=False),
)

APPROVALS = sa.Table(
    "sync_approvals",
    METADATA,
    sa.Column("run_id", sa.Integer, primary_key=True),
    sa.Column("sync", sa.String(100), nullable=False, index=True),
    sa.Column("reason", RedactedText(), nullable=False),
    sa.Column("plan", sa.Text, nullable=False),  # JSON: planned counts, remote records, sample diffs
    sa.Column("requested_at", _TS, nullable=False),
    sa.Column("decision", sa.String(10)),  # approved | rejected; NULL while waiting
    sa.Column("decided_by", sa.String(200)),
    sa.Column("decided_at", _TS),
)

APPROVAL_TABLES = (RUN_PLANS, APPROVALS)


class NotAwaitingApproval(LookupError):
    """``approve``/``reject`` of a run that is not waiting (unknown, or already decided)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ApprovalLog:
    engine: sa.Engine

    def record_plan(self, run_id: int, sync: str, source_rows: int | None, spec_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(RUN_PLANS.insert().values(run_id=run_id, sync=sync, source_rows=source_rows,
                                                   spec_hash=spec_hash))  # fmt: skip

    def recent_plans(self, sync: str, statuses: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
        """Plans of the latest runs of ``sync`` that ended in one of ``statuses``, newest first."""
        query = (
            sa.select(RUN_PLANS.c.run_id, RUN_PLANS.c.source_rows, RUN_PLANS.c.spec_hash)
            .join(RUNS, RUNS.c.id == RUN_PLANS.c.run_id)
            .where(RUN_PLANS.c.sync == sync, RUNS.c.status.in_(statuses))
            .order_by(RUN_PLANS.c.run_id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def request_approval(self, run_id: int, sync: str, reason: str, plan: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            text = msgspec.json.encode(plan).decode()
            conn.execute(
                APPROVALS.insert().values(run_id=run_id, sync=sync, reason=reason, plan=text, requested_at=_now())
            )

    def awaiting_approval(self, sync: str) -> int | None:
        """The run of ``sync`` waiting for a decision, if any."""
        query = sa.select(APPROVALS.c.run_id).where(APPROVALS.c.sync == sync, APPROVALS.c.decision.is_(None))
        with self.engine.connect() as conn:
            return conn.scalar(query.order_by(APPROVALS.c.run_id).limit(1))

    def approvals(self, sync: str | None = None, *, waiting: bool = False) -> list[dict[str, Any]]:
        query = sa.select(APPROVALS).order_by(APPROVALS.c.run_id)
        if sync:
            query = query.where(APPROVALS.c.sync == sync)
        if waiting:
            query = query.where(APPROVALS.c.decision.is_(None))
        with self.engine.connect() as conn:
            return [{**r._mapping, "plan": msgspec.json.decode(r.plan)} for r in conn.execute(query)]

    def decide_approval(self, run_id: int, decision: str, by: str) -> dict[str, Any]:
        """Record the decision once; returns the approval (with its plan). Raises NotAwaitingApproval."""
        with self.engine.begin() as conn:
            done = conn.execute(
                APPROVALS.update()
                .where(APPROVALS.c.run_id == run_id, APPROVALS.c.decision.is_(None))
                .values(decision=decision, decided_by=by, decided_at=_now())
            )
            if done.rowcount != 1:
                raise NotAwaitingApproval(f"run {run_id} is not waiting for approval")
            row = conn.execute(sa.select(APPROVALS).where(APPROVALS.c.run_id == run_id)).one()
        return {**row._mapping, "plan": msgspec.json.decode(row.plan)}

    def discard_plan(self, sync: str) -> int:
        """Drop what ``sync`` planned and its detector cursor, so the next pass plans again from the source."""
        with self.engine.begin() as conn:
            gone = conn.execute(OUTBOX.delete().where(OUTBOX.c.sync == sync)).rowcount
            conn.execute(CURSORS.delete().where(CURSORS.c.sync == sync))
        return int(gone)
