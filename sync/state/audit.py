"""The audit trail of writes through the API: who, when, what, before and after.

Values are recorded in API form, only for fields that changed, and never for
fields hidden behind a scope; request bodies and tokens are never stored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from sync.state.store import METADATA

if TYPE_CHECKING:
    from sync.state.store import StateDatabase

__all__ = ("AuditEntry", "AuditLog")

AUDIT = sa.Table(
    "audit",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False, index=True),
    sa.Column("subject", sa.String(255)),
    sa.Column("request_id", sa.String(128)),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("resource", sa.String(128), nullable=False, index=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("before", sa.Text),
    sa.Column("after", sa.Text),
    sa.Column("via", sa.String(160)),
)

_encoder = msgspec.json.Encoder(decimal_format="number")


class AuditEntry(msgspec.Struct, kw_only=True):
    id: int | None = None
    at: str = ""
    subject: str | None
    request_id: str | None
    version: str
    resource: str
    key: str
    """The row's key as addressed in URLs (``J000123``, ``J000123,20``)."""
    action: str
    status: int
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    via: str | None = None
    """How the write arrived when not by a plain REST call: ``mcp:<tool>`` for an agent's tool call."""


@dataclass(frozen=True, slots=True)
class AuditLog:
    db: StateDatabase

    def record(self, entry: AuditEntry) -> None:
        at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        with self.db.engine.begin() as conn:
            conn.execute(
                AUDIT.insert().values(
                    at=at,
                    subject=entry.subject,
                    request_id=entry.request_id,
                    version=entry.version,
                    resource=entry.resource,
                    key=entry.key,
                    action=entry.action,
                    status=entry.status,
                    before=None if entry.before is None else _encoder.encode(entry.before).decode(),
                    after=None if entry.after is None else _encoder.encode(entry.after).decode(),
                    via=entry.via,
                )
            )

    def list(
        self,
        *,
        resource: str | None = None,
        subject: str | None = None,
        action: str | None = None,
        key: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first; ``after_id`` continues below the last id of the previous page."""
        statement = sa.select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit)
        for column, value in ((AUDIT.c.resource, resource), (AUDIT.c.subject, subject), (AUDIT.c.action, action)):
            if value is not None:
                statement = statement.where(column == value)
        if key is not None:
            statement = statement.where(AUDIT.c.key == key)
        if since is not None:
            statement = statement.where(AUDIT.c.at >= since)
        if until is not None:
            statement = statement.where(AUDIT.c.at < until)
        if after_id is not None:
            statement = statement.where(AUDIT.c.id < after_id)
        with self.db.engine.connect() as conn:
            rows = conn.execute(statement).all()
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                subject=r.subject,
                request_id=r.request_id,
                version=r.version,
                resource=r.resource,
                key=r.key,
                action=r.action,
                status=r.status,
                before=None if r.before is None else msgspec.json.decode(r.before),
                after=None if r.after is None else msgspec.json.decode(r.after),
                via=r.via,
            )
            for r in rows
        ]
