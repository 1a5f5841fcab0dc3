"""The durable webhook queue in the state store: received once, applied once, in event-time order.

A delivery is stored before the provider gets its 200, keyed by the provider's event identity,
so a redelivery is acknowledged and ignored. Workers claim events with a compare-and-set on
their status (any number of processes, any backend) and a lease, so an event whose worker died
is claimed again. Per remote object (a Shopify order) the queue keeps the time of the newest
event applied and what it left behind (``state``): an event older than that is ``superseded``,
which is how out-of-order deliveries resolve by event time.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from sync.state.store import METADATA

if TYPE_CHECKING:
    from sync.state.store import StateDatabase

__all__ = ("WEBHOOK_EVENTS", "WEBHOOK_OBJECTS", "WebhookEvent", "WebhookQueue")

WEBHOOK_EVENTS = sa.Table(
    "bh_webhook_events",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("event_id", sa.String(255), nullable=False),
    sa.Column("topic", sa.String(128), nullable=False),
    sa.Column("object_id", sa.String(255)),
    # ISO 8601 UTC text: sorts as time on every backend, and SQLite keeps no offsets.
    sa.Column("occurred_at", sa.String(40), nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text),
    sa.Column("lease_until", sa.Float),
    sa.Column("finished_at", sa.String(40)),
    sa.UniqueConstraint("source", "event_id", name="uq_bh_webhook_event"),
)

WEBHOOK_OBJECTS = sa.Table(
    "bh_webhook_objects",
    METADATA,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("object_id", sa.String(255), primary_key=True),
    sa.Column("last_event_at", sa.String(40), nullable=False),
    sa.Column("state", sa.Text, nullable=False),
)

STATUSES = ("pending", "working", "done", "superseded", "dead")


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: int
    source: str
    event_id: str
    topic: str
    object_id: str | None
    occurred_at: str
    payload: bytes
    attempts: int


def utc_text(when: dt.datetime | None = None) -> str:
    """``when`` (aware; now by default) as fixed-width ISO UTC text, microseconds included."""
    value = (when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class WebhookQueue:
    def __init__(self, database: StateDatabase) -> None:
        self.db = database

    def receive(
        self, source: str, event_id: str, topic: str, object_id: str | None, occurred_at: str, payload: bytes
    ) -> bool:
        """Store one delivery; False when this event was received before (a redelivery)."""
        row = {
            "source": source, "event_id": event_id[:255], "topic": topic[:128], "object_id": object_id,
            "occurred_at": occurred_at, "received_at": utc_text(), "payload": payload.decode("utf-8", "replace"),
            "status": "pending", "attempts": 0,
        }  # fmt: skip
        try:
            with self.db.engine.begin() as conn:
                conn.execute(WEBHOOK_EVENTS.insert().values(**row))
        except sa.exc.IntegrityError:
            return False
        return True

    def claim(self, sources: tuple[str, ...], limit: int = 20, lease_s: float = 60.0) -> list[WebhookEvent]:
        """Up to ``limit`` events to apply, oldest event time first, each leased to the caller."""
        now = time.time()
        t = WEBHOOK_EVENTS
        claimable = sa.or_(t.c.status == "pending", sa.and_(t.c.status == "working", t.c.lease_until < now))
        with self.db.engine.connect() as conn:
            candidates = (
                conn.execute(
                    sa.select(t.c.id)
                    .where(claimable, t.c.source.in_(sources))
                    .order_by(t.c.occurred_at, t.c.id)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
        claimed: list[WebhookEvent] = []
        for event_id in candidates:
            with self.db.engine.begin() as conn:
                taken = conn.execute(
                    t.update()
                    .where(t.c.id == event_id, claimable)
                    .values(status="working", lease_until=now + lease_s, attempts=t.c.attempts + 1)
                )
                if taken.rowcount != 1:  # another worker took it first
                    continue
                row = conn.execute(sa.select(t).where(t.c.id == event_id)).mappings().one()
            claimed.append(
                WebhookEvent(
                    row["id"],
                    row["source"],
                    row["event_id"],
                    row["topic"],
                    row["object_id"],
                    row["occurred_at"],
                    row["payload"].encode(),
                    row["attempts"],
                )
            )
        return claimed

    def finish(self, conn: sa.Connection | None, event: WebhookEvent, status: str, error: str | None = None) -> None:
        """Give ``event`` its final (or, with ``pending``, its next) status, on ``conn`` when given."""
        assert status in STATUSES
        values: dict[str, Any] = {"status": status, "error": error, "lease_until": None}
        if status != "pending":
            values["finished_at"] = utc_text()
        statement = WEBHOOK_EVENTS.update().where(WEBHOOK_EVENTS.c.id == event.id).values(**values)
        if conn is not None:
            conn.execute(statement)
            return
        with self.db.engine.begin() as own:
            own.execute(statement)

    def settle(self, event: WebhookEvent, status: str) -> None:
        """Finish ``event`` with ``status`` unless its applier finished it already."""
        assert status in STATUSES
        t = WEBHOOK_EVENTS
        with self.db.engine.begin() as conn:
            conn.execute(
                t.update()
                .where(t.c.id == event.id, t.c.status == "working")
                .values(status=status, lease_until=None, finished_at=utc_text())
            )

    def object_state(self, conn: sa.Connection, source: str, object_id: str) -> tuple[str | None, dict[str, Any]]:
        """(time of the newest event applied, what it left) for one remote object."""
        o = WEBHOOK_OBJECTS
        row = conn.execute(
            sa.select(o.c.last_event_at, o.c.state).where(o.c.source == source, o.c.object_id == object_id)
        ).first()
        if row is None:
            return None, {}
        return row[0], msgspec.json.decode(row[1])

    def set_object_state(
        self, conn: sa.Connection, source: str, object_id: str, event_at: str, state: dict[str, Any], *, new: bool
    ) -> None:
        o = WEBHOOK_OBJECTS
        encoded = msgspec.json.encode(state).decode()
        if new:
            conn.execute(o.insert().values(source=source, object_id=object_id, last_event_at=event_at, state=encoded))
        else:
            conn.execute(
                o.update()
                .where(o.c.source == source, o.c.object_id == object_id)
                .values(last_event_at=event_at, state=encoded)
            )

    def counts(self) -> dict[tuple[str, str], int]:
        """(source, status) -> events, for status output and metrics."""
        t = WEBHOOK_EVENTS
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.source, t.c.status, sa.func.count()).group_by(t.c.source, t.c.status))
            return {(r[0], r[1]): int(r[2]) for r in rows}

    def dead(self, limit: int = 100) -> list[dict[str, Any]]:
        t = WEBHOOK_EVENTS
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.id, t.c.source, t.c.topic, t.c.object_id, t.c.occurred_at, t.c.attempts, t.c.error)
                .where(t.c.status == "dead")
                .order_by(t.c.id)
                .limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    def replay(self, ids: list[int] | None = None) -> int:
        """Dead events back to pending (all, or those ``ids``), after their cause was fixed."""
        t = WEBHOOK_EVENTS
        where = [t.c.status == "dead"]
        if ids:
            where.append(t.c.id.in_(ids))
        with self.db.engine.begin() as conn:
            return int(conn.execute(t.update().where(*where).values(status="pending", error=None)).rowcount)
