"""Alert state (raised or clear, per kind and subject), its history, and destination grant status.

Mixed into ``SyncStore`` as ``AlertLog``. Three tables:

- ``sync_alerts``: one row per (kind, subject) ever raised, with ``active`` and the
  message and value last evaluated. A state change is a compare-and-set on that row
  (``UPDATE … WHERE active = <old>``, or an insert that loses to a concurrent one), so
  when several workers evaluate the same condition at once exactly one of them wins
  the change and delivers it;
- ``sync_alert_events``: every change (raised, cleared) with what its delivery did;
- ``sync_grants``: per destination, whether its authorisation works (``ok``) or a
  human must reconnect it (``reconnect_needed``), for connectors whose credentials are
  not a stored OAuth grant; ``grants()`` also reads the OAuth grants (Xero) themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
import sqlalchemy as sa

from sync.state.redacted import RedactedText
from sync.state.store import METADATA
from sync.state.sync_tables import CONTROLS, DLQ, RUNS
from sync.state.utc import UtcDateTime, utcnow

__all__ = ("ALERTS", "ALERT_EVENTS", "ALERT_TABLES", "GRANTS", "AlertLog", "GrantStatus")

GrantStatus = Literal["ok", "reconnect_needed"]
_TS = UtcDateTime()

ALERTS = sa.Table(
    "sync_alerts",
    METADATA,
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("subject", sa.String(200), primary_key=True),  # a sync, or a destination for grants
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("sync", sa.String(100)),
    sa.Column("destination", sa.String(100)),
    sa.Column("message", RedactedText(), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("threshold", sa.Float),
    sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    sa.Column("since", _TS, nullable=False),  # when it was last raised (or cleared)
    sa.Column("evaluated_at", _TS, nullable=False),
)

ALERT_EVENTS = sa.Table(
    "sync_alert_events",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("event", sa.String(10), nullable=False),  # raised | cleared
    sa.Column("message", RedactedText(), nullable=False),
    sa.Column("at", _TS, nullable=False),
    sa.Column("delivery", sa.Text),  # what each channel did; NULL until delivered
)

GRANTS = sa.Table(
    "sync_grants",
    METADATA,
    sa.Column("destination", sa.String(100), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", RedactedText(), nullable=False, server_default=""),
    sa.Column("updated_at", _TS, nullable=False),
)

ALERT_TABLES = (ALERTS, ALERT_EVENTS, GRANTS)


class AlertLog:
    """The SQL half of alerting; the evaluation itself is ``sync/alerts``."""

    engine: sa.Engine

    def alert_states(self) -> list[dict[str, Any]]:
        """Every alert row (active or not), oldest change first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(ALERTS).order_by(ALERTS.c.since, ALERTS.c.kind, ALERTS.c.subject))
            return [_decoded(r._mapping) for r in rows]

    def transition_alert(
        self,
        kind: str,
        subject: str,
        active: bool,
        *,
        message: str,
        sync: str | None = None,
        destination: str | None = None,
        value: float | None = None,
        threshold: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> int | None:
        """Move (kind, subject) to ``active``; the new event's id if this call made the change, else None.

        Already in that state: the message and value are refreshed (a lag that keeps growing)
        and no event is made. A subject never raised that is asked to be clear makes nothing.
        """
        now = utcnow()
        values = {"message": message, "sync": sync, "destination": destination, "value": value,
                  "threshold": threshold, "details": msgspec.json.encode(details or {}).decode(),
                  "evaluated_at": now}  # fmt: skip
        key = sa.and_(ALERTS.c.kind == kind, ALERTS.c.subject == subject)
        with self.engine.begin() as conn:
            current = conn.scalar(sa.select(ALERTS.c.active).where(key))
            moved = 0
            if current is None and active:
                try:
                    with conn.begin_nested():
                        conn.execute(ALERTS.insert().values(kind=kind, subject=subject, active=True, since=now,
                                                            **values))  # fmt: skip
                    moved = 1
                except sa.exc.IntegrityError:
                    pass  # a concurrent worker raised it first
            elif current is not None and bool(current) != active:
                # Compare-and-set: of several workers changing it at once, one sees a row to update.
                moved = conn.execute(
                    ALERTS.update().where(key, ALERTS.c.active == (not active)).values(active=active, since=now,
                                                                                        **values)
                ).rowcount  # fmt: skip
            if not moved:
                if current is not None:
                    conn.execute(ALERTS.update().where(key, ALERTS.c.active == active).values(**values))
                return None
            change = "raised" if active else "cleared"
            event = conn.execute(
                ALERT_EVENTS.insert().values(kind=kind, subject=subject, event=change, message=message, at=now)
            )
            return int(event.inserted_primary_key[0])  # type: ignore[index]  # a one-row INSERT reports its key

    def record_delivery(self, event_id: int, outcome: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(ALERT_EVENTS.update().where(ALERT_EVENTS.c.id == event_id).values(delivery=outcome))

    def alert_events(self, limit: int = 100, *, subject: str | None = None) -> list[dict[str, Any]]:
        """Raised/cleared events, newest first."""
        query = sa.select(ALERT_EVENTS).order_by(ALERT_EVENTS.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(ALERT_EVENTS.c.subject == subject)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- what the conditions read ----------------------------------------------------------

    def failure_streak(self, sync: str) -> int:
        """Consecutive failing runs of ``sync`` (``note_outcome`` keeps the count)."""
        with self.engine.connect() as conn:
            query = sa.select(CONTROLS.c.consecutive_failures).where(CONTROLS.c.sync == sync)
            return int(conn.scalar(query) or 0)

    def dlq_count(self, sync: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(DLQ).where(DLQ.c.sync == sync)) or 0)

    def run_started(
        self, sync: str, statuses: Sequence[str] | None = None, *, newest: bool = True
    ) -> dt.datetime | None:
        """When the newest (or oldest) run of ``sync`` in ``statuses`` (any, if None) started."""
        column = RUNS.c.started_at
        query = sa.select(sa.func.max(column) if newest else sa.func.min(column)).where(
            RUNS.c.sync == sync, RUNS.c.dry_run.is_(False)
        )
        if statuses is not None:
            query = query.where(RUNS.c.status.in_(list(statuses)))
        with self.engine.connect() as conn:
            found = conn.scalar(query)
        # An aggregate loses the column's type on SQLite: put the zone back.
        return _aware(found)

    # -- grant status ------------------------------------------------------------------------

    def set_grant(self, destination: str, status: GrantStatus, reason: str = "") -> None:
        """Record whether ``destination``'s authorisation works (``ok``) or must be reconnected by a human."""
        from sync.state.sync_store import upsert

        row = {"destination": destination, "status": status, "reason": reason, "updated_at": utcnow()}
        with self.engine.begin() as conn:
            upsert(conn, GRANTS, [row], ["destination"])

    def grants(self) -> dict[str, dict[str, Any]]:
        """destination -> ``status, reason, updated_at``, for destinations that reported one.

        Stored OAuth grants (``sync/state/oauth_grants.py``, Xero) count too: one marked
        ``reconnect`` (its refresh token was refused) is ``reconnect_needed`` here.
        """
        from sync.state.oauth_grants import OAUTH_GRANTS

        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(sa.select(GRANTS)):
                found[r.destination] = {"status": r.status, "reason": r.reason, "updated_at": r.updated_at}
            columns = (OAUTH_GRANTS.c.name, OAUTH_GRANTS.c.status, OAUTH_GRANTS.c.reason, OAUTH_GRANTS.c.updated_at)
            for r in conn.execute(sa.select(*columns)):
                if found.get(r.name, {}).get("status") == "reconnect_needed":
                    continue  # either record saying so is enough
                status = "reconnect_needed" if r.status == "reconnect" else "ok"
                found[r.name] = {"status": status, "reason": r.reason or "", "updated_at": r.updated_at}
        return found


def _decoded(row: Any) -> dict[str, Any]:
    return {**row, "details": msgspec.json.decode(row["details"])}


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite returns the stored text for an aggregate
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
