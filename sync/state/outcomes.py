"""Row-level outcomes of each run: what was sent for a record, what the destination answered, and the result.

The console's run detail reads them (searchable by legacy key). They are kept for
``sync.outcome_retention_days`` (the engine prunes older ones when a run starts), so the
table stays small. Payloads are JSON text with secrets redacted before they are written
(``redact``): a destination answer never carries a token into the state store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
import sqlalchemy as sa

from legacy_adapters.redaction import redact_value
from sync.state.redacted import RedactedText
from sync.state.store import METADATA
from sync.state.utc import UtcDateTime, utcnow

__all__ = ("OUTCOMES", "RECORD_OUTCOMES", "Outcome", "OutcomeLog", "redact")

Outcome = Literal["created", "updated", "deleted", "unchanged", "failed", "dead_lettered", "deferred", "skipped"]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]  # a Literal's members

RECORD_OUTCOMES = sa.Table(
    "sync_record_outcomes",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False, index=True),
    sa.Column("sync", sa.String(100), nullable=False),
    sa.Column("key", sa.String(400), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("request", sa.Text),
    sa.Column("answer", sa.Text),
    sa.Column("error", RedactedText()),
    sa.Column("at", UtcDateTime(), nullable=False, index=True),
)

_MAX_TEXT = 20_000
"""A payload beyond this is cut (a record's request is a few hundred bytes; this bounds a hostile one)."""


def redact(value: Any) -> Any:
    """``value`` with secret-keyed entries masked and secrets in its text replaced (``legacy_adapters.redaction``)."""
    return redact_value(value)


def _payload(value: Any) -> str | None:
    if value is None:
        return None
    text = msgspec.json.encode(redact(value), enc_hook=str).decode()
    return text if len(text) <= _MAX_TEXT else msgspec.json.encode({"truncated": text[:_MAX_TEXT]}).decode()


def _decoded(text: str | None) -> Any:
    return None if text is None else msgspec.json.decode(text)


class OutcomeLog:
    """Mixed into ``SyncStore``."""

    engine: sa.Engine

    def record_outcomes(self, run_id: int, sync: str, outcomes: Sequence[dict[str, Any]]) -> None:
        """Each ``{key, outcome, request?, answer?, error?}`` of run ``run_id``, in one transaction."""
        if not outcomes:
            return
        at = utcnow()
        rows = [
            {"run_id": run_id, "sync": sync, "key": o["key"], "outcome": o["outcome"],
             "request": _payload(o.get("request")), "answer": _payload(o.get("answer")),
             "error": o.get("error"), "at": at}
            for o in outcomes
        ]  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(RECORD_OUTCOMES.insert(), rows)

    def outcomes(
        self, run_id: int, *, key: str | None = None, outcome: str | None = None, limit: int = 100, after_id: int = 0
    ) -> list[dict[str, Any]]:
        """A run's outcomes in the order they were recorded; ``key`` matches the legacy key's text anywhere."""
        query = (
            sa.select(RECORD_OUTCOMES)
            .where(RECORD_OUTCOMES.c.run_id == run_id, RECORD_OUTCOMES.c.id > after_id)
            .order_by(RECORD_OUTCOMES.c.id)
            .limit(limit)
        )
        if key:
            pattern = "%" + key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(RECORD_OUTCOMES.c.key.like(pattern, escape="\\"))
        if outcome:
            query = query.where(RECORD_OUTCOMES.c.outcome == outcome)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row["request"], row["answer"] = _decoded(row["request"]), _decoded(row["answer"])
        return rows

    def prune_outcomes(self, older_than: dt.datetime) -> int:
        """Drop outcomes recorded before ``older_than``; how many."""
        with self.engine.begin() as conn:
            return int(conn.execute(RECORD_OUTCOMES.delete().where(RECORD_OUTCOMES.c.at < older_than)).rowcount)
