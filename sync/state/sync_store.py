"""The sync engine's view of the state store: SQLAlchemy Core over SQLite or PostgreSQL.

Everything the engine must not forget between runs or share between workers
lives here: cursors, delivered-row fingerprints, the legacy-key -> remote-id map,
the outbox of planned work (leased to one worker at a time with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer anyway), run
history, per-record errors, conflicts and the dead-letter queue. Run history and
the DLQ live in ``sync/state/runs.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from sync.state.base import IdEntry, OutboxItem
from sync.state.runs import RunLog
from sync.state.store import StateDatabase
from sync.state.sync_tables import CONTROLS, CURSORS, FINGERPRINTS, ID_MAP, OUTBOX, SEEN, SYNC_TABLES

__all__ = ("IdEntry", "OutboxItem", "SyncStore", "upsert")

_CHUNK = 500
"""Keys per IN list: far below SQLite's and PostgreSQL's parameter limits."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    keep: Sequence[str] = (),
) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE, in the backend's own dialect; ``keep`` columns are insert-only."""
    if not rows:
        return
    statement = _insert(conn)(table)
    updates = {c: statement.excluded[c] for c in rows[0] if c not in keys and c not in keep}
    conn.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=updates), list(rows))


def _insert(conn: sa.Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # same on_conflict API as PostgreSQL's
    return insert


class SyncStore(RunLog):
    """Durable sync state. One instance per process; safe to share between threads."""

    def __init__(self, database: StateDatabase) -> None:
        self.db = database
        self.engine = database.engine

    @classmethod
    def from_url(cls, url: str) -> SyncStore:
        store = cls(StateDatabase(url))
        store.create()
        return store

    def create(self) -> None:
        # Only our tables: the store is usable whatever other state modules exist.
        from sync.state.store import METADATA

        METADATA.create_all(self.engine, tables=list(SYNC_TABLES), checkfirst=True)

    # -- controls: pause and the planning lease ----------------------------------------------

    def _ensure_control(self, conn: sa.Connection, sync: str) -> None:
        if conn.execute(sa.select(CONTROLS.c.sync).where(CONTROLS.c.sync == sync)).first() is None:
            try:
                with conn.begin_nested():
                    conn.execute(CONTROLS.insert().values(sync=sync, paused=False, consecutive_failures=0))
            except sa.exc.IntegrityError:
                pass  # another worker created it first

    def set_paused(self, sync: str, paused: bool) -> None:
        with self.engine.begin() as conn:
            self._ensure_control(conn, sync)
            conn.execute(CONTROLS.update().where(CONTROLS.c.sync == sync).values(paused=paused))

    def is_paused(self, sync: str) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.scalar(sa.select(CONTROLS.c.paused).where(CONTROLS.c.sync == sync)))

    def acquire_plan(self, sync: str, worker: str, lease_s: float) -> bool:
        """Take the right to detect changes for ``sync`` unless a live worker holds it."""
        now = utcnow()
        with self.engine.begin() as conn:
            self._ensure_control(conn, sync)
            free = sa.or_(CONTROLS.c.plan_owner.is_(None), CONTROLS.c.plan_until < now, CONTROLS.c.plan_owner == worker)
            result = conn.execute(
                CONTROLS.update()
                .where(CONTROLS.c.sync == sync, free)
                .values(plan_owner=worker, plan_until=now + dt.timedelta(seconds=lease_s))
            )
            return result.rowcount == 1

    def release_plan(self, sync: str, worker: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                CONTROLS.update()
                .where(CONTROLS.c.sync == sync, CONTROLS.c.plan_owner == worker)
                .values(plan_owner=None, plan_until=None)
            )

    def plan_held(self, sync: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(CONTROLS.c.plan_owner, CONTROLS.c.plan_until).where(CONTROLS.c.sync == sync))
            found = row.first()
        return bool(found and found.plan_owner and found.plan_until and _aware(found.plan_until) > utcnow())

    # -- cursors and fingerprints ------------------------------------------------------------

    def get_cursor(self, sync: str) -> Any:
        with self.engine.connect() as conn:
            text = conn.scalar(sa.select(CURSORS.c.cursor).where(CURSORS.c.sync == sync))
        return None if text is None else msgspec.json.decode(text)

    def set_cursor(self, sync: str, cursor: Any) -> None:
        with self.engine.begin() as conn:
            row = {"sync": sync, "cursor": msgspec.json.encode(cursor).decode(), "updated_at": utcnow()}
            upsert(conn, CURSORS, [row], ["sync"])

    def fingerprints(self, sync: str, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                query = sa.select(FINGERPRINTS.c.key, FINGERPRINTS.c.fingerprint).where(
                    FINGERPRINTS.c.sync == sync, FINGERPRINTS.c.key.in_(chunk)
                )
                found.update({r.key: r.fingerprint for r in conn.execute(query)})
        return found

    def clear_seen(self, sync: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(SEEN.delete().where(SEEN.c.sync == sync))

    def mark_seen(self, sync: str, keys: Iterable[str]) -> None:
        rows = [{"sync": sync, "key": k} for k in dict.fromkeys(keys)]
        if rows:
            with self.engine.begin() as conn:
                # A key listed twice (tables without a unique key) is one row, not an error.
                conn.execute(_insert(conn)(SEEN).on_conflict_do_nothing(), rows)

    def unseen_keys(self, sync: str, batch_size: int = 5000) -> Iterator[list[str]]:
        """Keys with a fingerprint that the last snapshot did not see: deleted at the source."""
        seen = SEEN.alias("seen")
        query = (
            sa.select(FINGERPRINTS.c.key)
            .outerjoin(seen, sa.and_(seen.c.sync == FINGERPRINTS.c.sync, seen.c.key == FINGERPRINTS.c.key))
            .where(FINGERPRINTS.c.sync == sync, seen.c.key.is_(None))
            .order_by(FINGERPRINTS.c.key)
        )
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(query)
            for part in result.partitions():
                yield [r.key for r in part]

    def forget(self, sync: str, keys: Sequence[str]) -> None:
        """Drop fingerprints of rows whose delete this sync's mode ignores, so they are not reported again."""
        with self.engine.begin() as conn:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                conn.execute(FINGERPRINTS.delete().where(FINGERPRINTS.c.sync == sync, FINGERPRINTS.c.key.in_(chunk)))

    def accept(self, sync: str, prints: dict[str, str]) -> None:
        """Store fingerprints of rows the mode chose not to send (insert_only updates), so they stay quiet."""
        rows = [{"sync": sync, "key": k, "fingerprint": f} for k, f in prints.items()]
        with self.engine.begin() as conn:
            upsert(conn, FINGERPRINTS, rows, ["sync", "key"])

    # -- id map ------------------------------------------------------------------------------

    def id_entries(self, sync: str, keys: Sequence[str]) -> dict[str, IdEntry]:
        found: dict[str, IdEntry] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), _CHUNK):
                query = sa.select(ID_MAP).where(ID_MAP.c.sync == sync, ID_MAP.c.key.in_(keys[start : start + _CHUNK]))
                for r in conn.execute(query):
                    found[r.key] = IdEntry(r.remote_id, msgspec.json.decode(r.extra), msgspec.json.decode(r.sent))
        return found

    def id_count(self, sync: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(ID_MAP).where(ID_MAP.c.sync == sync)) or 0)

    # -- outbox ------------------------------------------------------------------------------

    def enqueue(self, sync: str, items: Sequence[dict[str, Any]]) -> None:
        """Add planned records (``key, op, row, fingerprint, changed_at``); a newer plan replaces an older one."""
        rows = [
            {
                "sync": sync,
                "key": i["key"],
                "op": i["op"],
                "row": None if i.get("row") is None else msgspec.json.encode(i["row"]).decode(),
                "fingerprint": i.get("fingerprint"),
                "changed_at": i.get("changed_at"),
                "attempts": i.get("attempts", 0),
                "not_before_run": 0,
            }
            for i in items
        ]
        with self.engine.begin() as conn:
            # A re-planned record keeps its spent attempts: failing forever must end in the DLQ.
            upsert(conn, OUTBOX, rows, ["sync", "key"], keep=("attempts", "not_before_run"))

    def outbox_prints(self, sync: str, keys: Sequence[str]) -> dict[str, str | None]:
        """Keys already waiting in the outbox, with the fingerprint they wait with."""
        found: dict[str, str | None] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), _CHUNK):
                query = sa.select(OUTBOX.c.key, OUTBOX.c.fingerprint).where(
                    OUTBOX.c.sync == sync, OUTBOX.c.key.in_(keys[start : start + _CHUNK])
                )
                found.update({r.key: r.fingerprint for r in conn.execute(query)})
        return found

    def pending(self, sync: str) -> int:
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(OUTBOX).where(OUTBOX.c.sync == sync)
            return int(conn.scalar(query) or 0)

    def claim(self, sync: str, worker: str, run_id: int, limit: int, lease_s: float) -> list[OutboxItem]:
        """Lease up to ``limit`` records nobody else holds; concurrent workers get disjoint sets."""
        now = utcnow()
        free = sa.or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < now)
        pick = (
            sa.select(OUTBOX.c.id)
            .where(OUTBOX.c.sync == sync, OUTBOX.c.not_before_run <= run_id, free)
            .order_by(OUTBOX.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers instead
        )
        statement = (
            OUTBOX.update()
            .where(OUTBOX.c.id.in_(pick.scalar_subquery()))
            .values(lease_owner=worker, lease_until=now + dt.timedelta(seconds=lease_s))
            .returning(*OUTBOX.c)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(statement).all()
        items = [
            OutboxItem(
                r.id,
                r.sync,
                r.key,
                r.op,
                None if r.row is None else msgspec.json.decode(r.row),
                r.fingerprint,
                r.changed_at,
                r.attempts,
            )
            for r in rows
        ]
        return sorted(items, key=lambda i: i.id)

    def release(self, worker: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                OUTBOX.update().where(OUTBOX.c.lease_owner == worker).values(lease_owner=None, lease_until=None)
            )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
