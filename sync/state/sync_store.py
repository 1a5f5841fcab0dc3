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
import functools
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from sync.state.alerts import AlertLog
from sync.state.approvals import ApprovalLog
from sync.state.base import IdEntry, OutboxItem
from sync.state.destinations import DestinationLog
from sync.state.outcomes import OutcomeLog
from sync.state.runs import RunLog
from sync.state.snapshot_pass import SqlSnapshotPass
from sync.state.store import StateDatabase
from sync.state.sync_tables import (
    CONTROLS,
    CURSORS,
    FINGERPRINTS,
    ID_MAP,
    OUTBOX,
    RATE_BUDGETS,
    RUNS,
    SKIPPED,
)
from sync.state.utc import utcnow

__all__ = ("IdEntry", "OutboxItem", "SyncStore", "upsert")

_CHUNK = 500
"""Keys per IN list: far below SQLite's and PostgreSQL's parameter limits."""
_SQLITE_ROWS = 400
"""Rows per multi-row SQLite statement: 801 parameters, under the 999 of SQLite builds before 3.32."""


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


@functools.cache
def _accept_sqlite(n: int) -> str:
    """``n`` fingerprints upserted in one SQLite statement (a dict's keys: no key twice)."""
    rows = ",".join(f"(?1,?{i + 2},?{n + i + 2})" for i in range(n))
    return (
        f"INSERT INTO {FINGERPRINTS.name} (sync, key, fingerprint) VALUES {rows} "
        "ON CONFLICT (sync, key) DO UPDATE SET fingerprint = excluded.fingerprint"
    )


class SyncStore(RunLog, ApprovalLog, AlertLog, DestinationLog, OutcomeLog):
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
        """Bring the store's schema up to date (every state table, through the migrations)."""
        self.db.migrate()

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

    def acquire_plan(self, sync: str, worker: str, lease_s: float, pass_id: str | None = None) -> bool:
        """Take the right to detect changes for ``sync`` unless a live worker holds it."""
        now = utcnow()
        with self.engine.begin() as conn:
            self._ensure_control(conn, sync)
            free = sa.or_(CONTROLS.c.plan_owner.is_(None), CONTROLS.c.plan_until < now, CONTROLS.c.plan_owner == worker)
            result = conn.execute(
                CONTROLS.update()
                .where(CONTROLS.c.sync == sync, free)
                .values(plan_owner=worker, plan_until=now + dt.timedelta(seconds=lease_s), plan_pass=pass_id)
            )
            return result.rowcount == 1

    def renew_plan(self, sync: str, worker: str, pass_id: str, lease_s: float) -> bool:
        """Extend the lease of pass ``pass_id``; False once anyone else took it (even if since released)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                CONTROLS.update()
                .where(CONTROLS.c.sync == sync, CONTROLS.c.plan_owner == worker, CONTROLS.c.plan_pass == pass_id)
                .values(plan_until=utcnow() + dt.timedelta(seconds=lease_s))
            )
            return result.rowcount == 1

    def release_plan(self, sync: str, worker: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                CONTROLS.update()
                .where(CONTROLS.c.sync == sync, CONTROLS.c.plan_owner == worker)
                .values(plan_owner=None, plan_until=None, plan_pass=None)
            )

    def plan_held(self, sync: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(CONTROLS.c.plan_owner, CONTROLS.c.plan_until).where(CONTROLS.c.sync == sync))
            found = row.first()
        return bool(found and found.plan_owner and found.plan_until and found.plan_until > utcnow())

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

    def snapshot_pass(self, sync: str) -> SqlSnapshotPass:
        """The pass's seen set: a temporary table on a connection it holds (``sync/state/snapshot_pass.py``)."""
        return SqlSnapshotPass(self.engine, sync)

    def forget(self, sync: str, keys: Sequence[str]) -> None:
        """Drop fingerprints of rows whose delete this sync's mode ignores, so they are not reported again."""
        with self.engine.begin() as conn:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                conn.execute(FINGERPRINTS.delete().where(FINGERPRINTS.c.sync == sync, FINGERPRINTS.c.key.in_(chunk)))

    def accept(self, sync: str, prints: dict[str, str]) -> None:
        """Store fingerprints of rows the mode chose not to send (insert_only updates), so they stay quiet."""
        if not prints:
            return
        # A snapshot's first pass accepts whole batches: the driver's own bulk path, not a parameter dict per row.
        table = FINGERPRINTS.name
        on_conflict = "ON CONFLICT (sync, key) DO UPDATE SET fingerprint = excluded.fingerprint"
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(
                    f"INSERT INTO {table} (sync, key, fingerprint) SELECT %(sync)s, p.pair ->> 0, p.pair ->> 1 "
                    f"FROM json_array_elements(%(prints)s::json) AS p (pair) {on_conflict}",
                    {"sync": sync, "prints": msgspec.json.encode(list(prints.items())).decode()},
                )
                return
            # SQLite: multi-row statements on the DBAPI cursor (inside this transaction), half the CPU of
            # executemany's row-at-a-time binding; ?1 the sync, then the keys, then the fingerprints.
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            keys, values = list(prints), list(prints.values())
            cursor = dbapi.cursor()
            try:
                for start in range(0, len(keys), _SQLITE_ROWS):
                    end = start + _SQLITE_ROWS
                    cursor.execute(_accept_sqlite(len(keys[start:end])), [sync, *keys[start:end], *values[start:end]])
            finally:
                cursor.close()

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
        now = utcnow()
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
                "retries": 0,
                "next_attempt_at": None,
                "claims": 0,
                "enqueued_at": now,
            }
            for i in items
        ]
        with self.engine.begin() as conn:
            # A re-planned record keeps its spent attempts (failing forever must end in the DLQ),
            # its backoff (a new version of a row does not make a shop that is down come back) and
            # the moment it was first planned (it has waited since then).
            keep = ("attempts", "not_before_run", "retries", "next_attempt_at", "claims", "enqueued_at")
            upsert(conn, OUTBOX, rows, ["sync", "key"], keep=keep)

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

    def oldest_pending_at(self, sync: str) -> dt.datetime | None:
        """When the longest-waiting record still in the outbox was first planned (None: none known)."""
        with self.engine.connect() as conn:
            query = sa.select(sa.func.min(OUTBOX.c.enqueued_at)).where(OUTBOX.c.sync == sync)
            value = conn.scalar(query)
        return value if isinstance(value, dt.datetime) else None

    def run_totals(self, sync: str) -> dict[str, Any]:
        """Runs by status and records written / failed / dead-lettered over the recorded history."""
        done = RUNS.c.done_creates + RUNS.c.done_updates + RUNS.c.done_deletes
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    RUNS.c.status,
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(done), 0),
                    sa.func.coalesce(sa.func.sum(RUNS.c.failed), 0),
                    sa.func.coalesce(sa.func.sum(RUNS.c.dead_lettered), 0),
                )
                .where(RUNS.c.sync == sync, RUNS.c.dry_run.is_(False))
                .group_by(RUNS.c.status)
            ).all()
        return {
            "runs": {status: int(count) for status, count, *_ in rows},
            "sent": sum(int(r[2]) for r in rows),
            "failed": sum(int(r[3]) for r in rows),
            "dead_lettered": sum(int(r[4]) for r in rows),
        }

    def budgets(self) -> list[dict[str, Any]]:
        """Every destination rate budget as last written: bucket, maximum, available, restore_rate, at."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(RATE_BUDGETS)).mappings().all()
        return [dict(row) for row in rows]

    def pending(self, sync: str) -> int:
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(OUTBOX).where(OUTBOX.c.sync == sync)
            return int(conn.scalar(query) or 0)

    def claim(self, sync: str, worker: str, run_id: int, limit: int, lease_s: float) -> list[OutboxItem]:
        """Lease up to ``limit`` records nobody else holds; concurrent workers get disjoint sets."""
        now = utcnow()
        free = sa.or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < now)
        due = sa.or_(OUTBOX.c.next_attempt_at.is_(None), OUTBOX.c.next_attempt_at <= now)
        pick = (
            sa.select(OUTBOX.c.id)
            .where(OUTBOX.c.sync == sync, OUTBOX.c.not_before_run <= run_id, free, due)
            .order_by(OUTBOX.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers instead
        )
        statement = (
            OUTBOX.update()
            .where(OUTBOX.c.id.in_(pick.scalar_subquery()))
            .values(lease_owner=worker, lease_until=now + dt.timedelta(seconds=lease_s), claims=OUTBOX.c.claims + 1)
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
                r.retries,
                claims=r.claims,
            )
            for r in rows
        ]
        return sorted(items, key=lambda i: i.id)

    def release(self, worker: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                OUTBOX.update().where(OUTBOX.c.lease_owner == worker).values(lease_owner=None, lease_until=None)
            )

    # -- skipped records ---------------------------------------------------------------------

    def skipped(self, sync: str, keys: Sequence[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), _CHUNK):
                query = sa.select(SKIPPED.c.key, SKIPPED.c.fingerprint).where(
                    SKIPPED.c.sync == sync, SKIPPED.c.key.in_(keys[start : start + _CHUNK])
                )
                found.update({r.key: r.fingerprint for r in conn.execute(query)})
        return found

    def skipped_records(self, sync: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(SKIPPED).order_by(SKIPPED.c.sync, SKIPPED.c.key)
        if sync:
            query = query.where(SKIPPED.c.sync == sync)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- the shared rate budget --------------------------------------------------------------

    def take_budget(self, bucket: str, cost: float, *, maximum: float, restore_rate: float, now: float) -> float:
        """Take ``cost`` points from the shared bucket: 0.0 when taken, else the seconds to wait first.

        A compare-and-set on the row (retried when another worker moved it first), so
        every worker on every host spends the same bucket and none overdraws it.
        """
        while True:
            with self.engine.begin() as conn:
                row = conn.execute(sa.select(RATE_BUDGETS).where(RATE_BUDGETS.c.bucket == bucket)).first()
                if row is None:
                    try:
                        with conn.begin_nested():
                            conn.execute(RATE_BUDGETS.insert().values(
                                bucket=bucket, maximum=maximum, available=maximum, restore_rate=restore_rate,
                                at=now, observed=False))  # fmt: skip
                    except sa.exc.IntegrityError:
                        pass
                    continue
                projected = min(row.maximum, row.available + max(0.0, now - row.at) * row.restore_rate)
                need = min(cost, row.maximum)
                if projected < need:
                    return (need - projected) / row.restore_rate
                moved = conn.execute(
                    RATE_BUDGETS.update()
                    .where(RATE_BUDGETS.c.bucket == bucket, RATE_BUDGETS.c.at == row.at,
                           RATE_BUDGETS.c.available == row.available)
                    .values(available=projected - need, at=max(now, row.at))
                )  # fmt: skip
                if moved.rowcount == 1:
                    return 0.0

    def observe_budget(self, bucket: str, *, maximum: float, available: float, restore_rate: float, now: float) -> None:
        """Correct the shared estimate with what the destination just said.

        Never raised above the estimate once observed: other workers' requests already
        paid for in the estimate may not have reached the shop when this answer was made.
        """
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(RATE_BUDGETS).where(RATE_BUDGETS.c.bucket == bucket).with_for_update()).first()
            if row is None:
                return
            projected = min(row.maximum, row.available + max(0.0, now - row.at) * row.restore_rate)
            value = min(projected, available) if row.observed else available
            conn.execute(
                RATE_BUDGETS.update()
                .where(RATE_BUDGETS.c.bucket == bucket)
                .values(maximum=maximum, available=min(value, maximum), restore_rate=restore_rate or 1.0,
                        at=max(now, row.at), observed=True)
            )  # fmt: skip
