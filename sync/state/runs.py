"""Run history (a small state machine), record outcomes, conflicts and the dead-letter queue.

Mixed into ``SyncStore``. A delivered record leaves the outbox in the same
transaction that stores its fingerprint and remote id, so a crash between the two
cannot happen; a failed one stays in the outbox until its attempt budget is spent,
then moves to the DLQ with its last error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import sqlalchemy as sa

from sync.state.sync_tables import (
    CONFLICTS,
    CONTROLS,
    DLQ,
    FINGERPRINTS,
    ID_MAP,
    OUTBOX,
    RECORD_ERRORS,
    RUNS,
    SKIPPED,
)
from sync.state.utc import utcnow

if TYPE_CHECKING:
    from sync.state.sync_store import OutboxItem

__all__ = ("FINAL_STATES", "TRANSITIONS", "FailureKind", "InvalidTransition", "RunLog")

FailureKind = Literal["refused", "deferred", "transient"]
"""refused: the destination said no (spends an attempt, dead-letters past ``max_attempts``);
deferred: waits on another record (no attempt spent); transient: 5xx, 429, timeouts, THROTTLED
(never dead-letters, backs off across runs)."""

_OUTCOMES = frozenset({"succeeded", "partially_failed", "failed", "cancelled"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled", "failed", "abandoned"}),
    "running": _OUTCOMES | {"abandoned", "awaiting_approval"},
    # A risky plan waits for a human: approved, it is sent; rejected, it is cancelled.
    "awaiting_approval": frozenset({"running", "cancelled"}),
    # Abandoned is a presumption (no live lease, e.g. after kill -9): a worker that was only
    # stalled and turns up again may still record how its run really ended.
    "abandoned": _OUTCOMES,
}
"""queued -> running [-> awaiting_approval -> running | cancelled] -> succeeded | partially_failed | failed |
cancelled | abandoned; outcomes go nowhere."""
FINAL_STATES = _OUTCOMES | {"abandoned"}
COUNTS = (
    *(f"{s}_{o}" for s in ("planned", "done") for o in ("creates", "updates", "deletes")),
    "failed",
    "dead_lettered",
    "conflicts",
    "skipped",
)


class InvalidTransition(RuntimeError):
    """A run was moved to a state its current state cannot reach (a bug, not a user error)."""


_now = utcnow


class RunLog:
    engine: sa.Engine

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, sync: str, worker: str, *, dry_run: bool = False) -> int:
        with self.engine.begin() as conn:
            values: dict[str, Any] = dict.fromkeys(COUNTS, 0)
            values |= {"sync": sync, "status": "queued", "worker": worker, "dry_run": dry_run, "started_at": _now()}
            return int(conn.execute(RUNS.insert().values(**values)).inserted_primary_key[0])  # type: ignore[index]  # a one-row INSERT always reports its key

    def move_run(self, run_id: int, status: str, *, error: str | None = None) -> None:
        """Advance the run's state machine; refuses transitions it does not allow."""
        with self.engine.begin() as conn:
            current = conn.scalar(sa.select(RUNS.c.status).where(RUNS.c.id == run_id))
            if status not in TRANSITIONS.get(str(current), frozenset()):
                raise InvalidTransition(f"run {run_id}: {current} -> {status}")
            values: dict[str, Any] = {"status": status}
            if status in FINAL_STATES:
                values |= {"finished_at": _now(), "error": error}
            conn.execute(RUNS.update().where(RUNS.c.id == run_id).values(**values))

    def add_counts(self, run_id: int, **counts: int) -> None:
        if counts := {k: v for k, v in counts.items() if v}:
            with self.engine.begin() as conn:
                conn.execute(
                    RUNS.update()
                    .where(RUNS.c.id == run_id)
                    .values({RUNS.c[k]: RUNS.c[k] + v for k, v in counts.items()})
                )

    def runs(self, sync: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        query = sa.select(RUNS).order_by(RUNS.c.id.desc()).limit(limit)
        if sync:
            query = query.where(RUNS.c.sync == sync)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def finished_since(self, start: dt.datetime) -> list[dict[str, Any]]:
        """Runs that finished at or after ``start``, oldest first (the console's throughput chart)."""
        query = sa.select(RUNS).where(RUNS.c.finished_at >= start).order_by(RUNS.c.finished_at)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def abandon_stale_runs(self, sync: str, grace_s: float) -> list[int]:
        """Mark unfinished runs of ``sync`` ``abandoned`` when their worker holds no live lease; their ids.

        A worker shows it is alive by a lease: the sync's planning lease or an outbox
        lease. A run older than ``grace_s`` whose worker holds neither died (kill -9,
        power loss) or lost its leases to another worker anyway; its outbox records
        are delivered by later runs.
        """
        now = _now()
        with self.engine.begin() as conn:
            control = conn.execute(
                sa.select(CONTROLS.c.plan_owner, CONTROLS.c.plan_until).where(CONTROLS.c.sync == sync)
            ).first()
            live = set(
                conn.scalars(
                    sa.select(OUTBOX.c.lease_owner).where(OUTBOX.c.sync == sync, OUTBOX.c.lease_until > now).distinct()
                )
            )
            if control and control.plan_owner and control.plan_until and control.plan_until > now:
                live.add(control.plan_owner)
            unfinished = conn.execute(
                sa.select(RUNS.c.id, RUNS.c.worker, RUNS.c.started_at).where(
                    RUNS.c.sync == sync, RUNS.c.status.in_(("queued", "running"))
                )
            ).all()
            cutoff = now - dt.timedelta(seconds=grace_s)
            stale = [r for r in unfinished if r.worker not in live and r.started_at < cutoff]
            for run in stale:
                error = f"abandoned: worker {run.worker} stopped without finishing (no live lease)"
                conn.execute(
                    RUNS.update()
                    .where(RUNS.c.id == run.id, RUNS.c.status.in_(("queued", "running")))
                    .values(status="abandoned", finished_at=now, error=error)
                )
        return [r.id for r in stale]

    def note_outcome(self, sync: str, failing: bool) -> int:
        """Count consecutive failing runs of ``sync``; returns the new count (0 after a success)."""
        with self.engine.begin() as conn:
            column = CONTROLS.c.consecutive_failures
            conn.execute(
                CONTROLS.update().where(CONTROLS.c.sync == sync).values({column: column + 1 if failing else 0})
            )
            return int(conn.scalar(sa.select(column).where(CONTROLS.c.sync == sync)) or 0)

    # -- record outcomes ---------------------------------------------------------------------

    def complete(self, item: OutboxItem, remote_id: str | None, extra: dict[str, Any], sent: dict[str, Any]) -> None:
        """Record one delivered record; see ``complete_many``."""
        self.complete_many([(item, remote_id, extra, sent)])

    def complete_many(
        self,
        done: Sequence[tuple[OutboxItem, str | None, dict[str, Any], dict[str, Any]]],
        *,
        run_id: int | None = None,
        counts: dict[str, int] | None = None,
    ) -> None:
        """Record delivered records: out of the outbox, fingerprint and id map updated, in one transaction.

        ``counts`` (``done_creates`` …) are added to run ``run_id`` in the same transaction, so a
        run killed afterwards still shows what it delivered.
        """
        from sync.state.sync_store import upsert

        prints, ids = [], []
        with self.engine.begin() as conn:
            if run_id is not None and (counts := {k: v for k, v in (counts or {}).items() if v}):
                increments = {RUNS.c[k]: RUNS.c[k] + v for k, v in counts.items()}
                conn.execute(RUNS.update().where(RUNS.c.id == run_id).values(increments))
            for item, remote_id, extra, sent in done:
                gone = conn.execute(
                    OUTBOX.delete().where(OUTBOX.c.id == item.id, _same(OUTBOX.c.fingerprint, item.outbox_fingerprint))
                )
                if gone.rowcount == 0:
                    # Re-planned while we pushed: the newer version stays for the next claim.
                    conn.execute(
                        OUTBOX.update().where(OUTBOX.c.id == item.id).values(lease_owner=None, lease_until=None)
                    )
                conn.execute(DLQ.delete().where(DLQ.c.sync == item.sync, DLQ.c.key == item.key))
                conn.execute(SKIPPED.delete().where(SKIPPED.c.sync == item.sync, SKIPPED.c.key == item.key))
                if item.op == "delete":
                    conn.execute(
                        FINGERPRINTS.delete().where(FINGERPRINTS.c.sync == item.sync, FINGERPRINTS.c.key == item.key)
                    )
                    conn.execute(ID_MAP.delete().where(ID_MAP.c.sync == item.sync, ID_MAP.c.key == item.key))
                    continue
                if item.fingerprint:
                    prints.append({"sync": item.sync, "key": item.key, "fingerprint": item.fingerprint})
                if remote_id:
                    ids.append({
                        "sync": item.sync, "key": item.key, "remote_id": remote_id,
                        "extra": msgspec.json.encode(extra).decode(), "sent": msgspec.json.encode(sent).decode(),
                        "updated_at": _now(),
                    })  # fmt: skip
            upsert(conn, FINGERPRINTS, prints, ["sync", "key"])
            upsert(conn, ID_MAP, ids, ["sync", "key"])

    def fail(
        self,
        item: OutboxItem,
        run_id: int,
        error: str,
        *,
        max_attempts: int,
        kind: FailureKind = "refused",
        retry_in_s: float = 0.0,
    ) -> bool:
        """Record a failed attempt; returns True when the record went to the dead-letter queue.

        Only a refusal spends an attempt. A transient failure counts a retry and is not
        claimed again before ``retry_in_s`` has passed (nor in this run); a deferred record
        waits for the next run.
        """
        attempts = item.attempts + (1 if kind == "refused" else 0)
        with self.engine.begin() as conn:
            conn.execute(
                RECORD_ERRORS.insert().values(run_id=run_id, sync=item.sync, key=item.key, error=error, at=_now())
            )
            if kind == "refused" and attempts >= max_attempts:
                conn.execute(OUTBOX.delete().where(OUTBOX.c.id == item.id))
                from sync.state.sync_store import upsert

                row = {
                    "sync": item.sync,
                    "key": item.key,
                    "op": item.op,
                    "row": None if item.row is None else msgspec.json.encode(item.row).decode(),
                    "fingerprint": item.fingerprint,
                    "attempts": attempts,
                    "last_error": error,
                    "created_at": _now(),
                }
                upsert(conn, DLQ, [row], ["sync", "key"])
                return True
            values: dict[str, Any] = {"attempts": attempts, "last_error": error, "not_before_run": run_id + 1,
                                      "lease_owner": None, "lease_until": None}  # fmt: skip
            if kind == "transient":
                values |= {"retries": item.retries + 1,
                           "next_attempt_at": _now() + dt.timedelta(seconds=retry_in_s)}  # fmt: skip
            else:  # refused or never sent: this claim is settled, nothing of it reached the shop
                values["claims"] = max(0, item.claims - 1)
            conn.execute(OUTBOX.update().where(OUTBOX.c.id == item.id).values(**values))
            return False

    def drop(self, item: OutboxItem) -> None:
        """Leave the outbox without a write: the source row is gone, or already what was delivered.

        A record re-planned meanwhile (another fingerprint) stays, unleased, for the next claim.
        """
        with self.engine.begin() as conn:
            gone = conn.execute(
                OUTBOX.delete().where(OUTBOX.c.id == item.id, _same(OUTBOX.c.fingerprint, item.outbox_fingerprint))
            )
            if gone.rowcount == 0:
                conn.execute(OUTBOX.update().where(OUTBOX.c.id == item.id).values(lease_owner=None, lease_until=None))

    def skip(self, item: OutboxItem, run_id: int, reason: str) -> None:
        """A final outcome without a write (``reason`` says why); not planned again while the row stays as it is."""
        from sync.state.sync_store import upsert

        self.drop(item)
        with self.engine.begin() as conn:
            row = {"sync": item.sync, "key": item.key, "fingerprint": item.fingerprint, "reason": reason,
                   "run_id": run_id, "at": _now()}  # fmt: skip
            upsert(conn, SKIPPED, [row], ["sync", "key"])
            conn.execute(RUNS.update().where(RUNS.c.id == run_id).values(skipped=RUNS.c.skipped + 1))

    def record_errors(self, run_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            query = sa.select(RECORD_ERRORS).where(RECORD_ERRORS.c.run_id == run_id).order_by(RECORD_ERRORS.c.id)
            return [dict(r._mapping) for r in conn.execute(query)]

    def record_conflict(
        self, run_id: int, sync: str, key: str, field: str, legacy: Any, remote: Any, winner: str
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                CONFLICTS.insert().values(
                    run_id=run_id, sync=sync, key=key, field=field, legacy_value=_text(legacy),
                    remote_value=_text(remote), winner=winner, at=_now(),
                )
            )  # fmt: skip

    def conflicts(
        self, sync: str | None = None, *, run_id: int | None = None, key: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        return self._listing(CONFLICTS, sync, run_id, key, limit)

    def errors(
        self, sync: str | None = None, *, run_id: int | None = None, key: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        return self._listing(RECORD_ERRORS, sync, run_id, key, limit)

    def _listing(
        self, table: sa.Table, sync: str | None, run_id: int | None, key: str | None, limit: int
    ) -> list[dict[str, Any]]:
        query = sa.select(table).order_by(table.c.id).limit(limit)
        for column, value in (("sync", sync), ("run_id", run_id), ("key", key)):
            if value is not None:
                query = query.where(table.c[column] == value)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- dead-letter queue -------------------------------------------------------------------

    def dlq(self, sync: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(DLQ).order_by(DLQ.c.id)
        if sync:
            query = query.where(DLQ.c.sync == sync)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def parked(self, sync: str, keys: Sequence[str]) -> dict[str, str | None]:
        """Dead-lettered keys and the fingerprint they failed with: the same row is not retried by itself."""
        with self.engine.connect() as conn:
            query = sa.select(DLQ.c.key, DLQ.c.fingerprint).where(DLQ.c.sync == sync, DLQ.c.key.in_(list(keys)))
            return {r.key: r.fingerprint for r in conn.execute(query)}

    def replay(self, sync: str | None = None, ids: Sequence[int] | None = None) -> int:
        """Move dead letters back into the outbox with a fresh attempt budget; returns how many."""
        query = sa.select(DLQ)
        if sync:
            query = query.where(DLQ.c.sync == sync)
        if ids:
            query = query.where(DLQ.c.id.in_(list(ids)))
        from sync.state.sync_store import upsert

        with self.engine.begin() as conn:
            letters = conn.execute(query).all()
            rows = [
                {"sync": d.sync, "key": d.key, "op": d.op, "row": d.row, "fingerprint": d.fingerprint,
                 "attempts": 0, "not_before_run": 0, "last_error": None, "retries": 0, "next_attempt_at": None,
                 "claims": 0}
                for d in letters
            ]  # fmt: skip
            upsert(conn, OUTBOX, rows, ["sync", "key"])
            if letters:
                conn.execute(DLQ.delete().where(DLQ.c.id.in_([d.id for d in letters])))
        return len(letters)

    def discard(self, sync: str | None = None, ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Give up on dead letters: out of the DLQ, their row accepted as it is (not planned again until it
        changes); the letters as they were."""
        query = sa.select(DLQ)
        if sync:
            query = query.where(DLQ.c.sync == sync)
        if ids:
            query = query.where(DLQ.c.id.in_(list(ids)))
        from sync.state.sync_store import upsert

        with self.engine.begin() as conn:
            letters = [dict(d._mapping) for d in conn.execute(query)]
            prints = [{"sync": d["sync"], "key": d["key"], "fingerprint": d["fingerprint"]}
                      for d in letters if d["fingerprint"] is not None]  # fmt: skip
            upsert(conn, FINGERPRINTS, prints, ["sync", "key"])
            if letters:
                conn.execute(DLQ.delete().where(DLQ.c.id.in_([d["id"] for d in letters])))
        return letters


def _same(column: sa.ColumnElement[Any], value: str | None) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _text(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()
