"""What the console shows of the syncs, and what it does to them, over the sync state store and engine.

One ``SyncConsole`` per app. Reads go to the state store the syncs share with
``bridgehead sync run --loop`` (so the console sees the loop's runs from any worker);
actions that send (run now, approve) use a ``SyncEngine`` of the gateway's own, which
takes the same leases as the loop, so a run from here and one from the loop never send
the same record twice.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import TYPE_CHECKING, Any

import msgspec

from gateway.exceptions import Conflict, NotFound
from sync.config import SyncConfig, load_sync_config
from sync.runbook import render_runbook, runbook_filename
from sync.state.approvals import NotAwaitingApproval
from sync.state.sync_store import SyncStore
from sync.state.utc import utcnow

if TYPE_CHECKING:
    import httpx

    from legacy_adapters.database import Database
    from legacy_adapters.mapping.model import Mapping
    from sync.engine import RunReport, SyncEngine
    from sync.state.store import StateDatabase

__all__ = ("SyncConsole", "run_summary")

_RECONNECT = re.compile(r"^HTTP 40[13]\b|invalid_grant|reconnect", re.IGNORECASE)
"""A run that failed like this needs a person to grant access again (a revoked or expired token)."""
LAST_RUNS = 5


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """A run as the console lists it: its counts by outcome (created, updated, deleted, failed, skipped)."""
    return {
        "id": run["id"],
        "sync": run["sync"],
        "status": run["status"],
        "started_at": run["started_at"],
        "finished_at": run["finished_at"],
        "created": run["done_creates"],
        "updated": run["done_updates"],
        "deleted": run["done_deletes"],
        "failed": run["failed"],
        "skipped": run["skipped"],
        "dead_lettered": run["dead_lettered"],
        "conflicts": run["conflicts"],
        "planned": {op: run[f"planned_{op}s"] for op in ("create", "update", "delete")},
        "error": run["error"],
    }


class SyncConsole:
    def __init__(
        self,
        mapping: Mapping,
        database: Database,
        state: StateDatabase,
        http: httpx.Client | None = None,
        mapping_path: str | None = None,
    ) -> None:
        self.mapping, self.database, self._http, self.mapping_path = mapping, database, http, mapping_path
        self.config: SyncConfig | None = load_sync_config(mapping.sync) if mapping.sync is not None else None
        url = (mapping.sync or {}).get("state_url")
        # One state store per mapping: the syncs share the gateway's unless the mapping gives them their own.
        self.store = SyncStore.from_url(url) if url else SyncStore(state)
        self._engine: SyncEngine | None = None
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self.config.syncs) if self.config else []

    def check(self, name: str) -> str:
        if name not in self.names:
            known = ", ".join(self.names) or "none"
            raise NotFound(f"no sync {name[:100]!r} (syncs: {known})")
        return name

    def engine(self) -> SyncEngine:
        with self._lock:
            if self._engine is None:
                import httpx

                from sync.engine import SyncEngine

                assert self.config is not None  # check() let a sync name through
                self._http = self._http or httpx.Client()
                self._engine = SyncEngine(self.config, self.mapping, self.database, self.store, self._http,
                                          worker=f"console:{id(self):x}")  # fmt: skip
            return self._engine

    def close(self) -> None:
        if self.store.db.url != self.mapping.state.url and (self.mapping.sync or {}).get("state_url"):
            self.store.db.dispose()

    # -- reads -------------------------------------------------------------------------------

    def syncs(self) -> list[dict[str, Any]]:
        return [self.sync(name) for name in self.names]

    def sync(self, name: str) -> dict[str, Any]:
        assert self.config is not None
        spec = self.config.syncs[self.check(name)]
        runs = self.store.runs(name, limit=LAST_RUNS)
        held = self.store.awaiting_approval(name)
        finished = [r for r in runs if r["finished_at"] is not None and r["status"] != "cancelled"]
        if self.store.is_paused(name):
            state = "paused"
        elif held is not None:
            state = "awaiting_approval"
        elif self.store.grants().get(spec.destination, {}).get("status") == "reconnect_needed" or (
            finished and finished[0]["status"] == "failed" and _RECONNECT.search(finished[0]["error"] or "")
        ):
            state = "reconnect_needed"
        else:
            state = "active"
        now = utcnow()
        delivered = next((r for r in runs if r["status"] in ("succeeded", "partially_failed")), None)
        # Every change made before the last good run started has been sent (or is in the DLQ): the lag bound.
        lag = (now - delivered["started_at"]).total_seconds() if delivered else None
        next_run = runs[0]["started_at"] + dt.timedelta(seconds=spec.interval_s) if runs else None
        return {
            "name": name,
            "resource": spec.resource,
            "destination": spec.destination,
            "object": spec.object,
            "mode": spec.mode,
            "state": state,
            "awaiting_run": held,
            "interval_s": spec.interval_s,
            "lag_s": None if lag is None else round(lag, 1),
            "next_run_at": next_run,
            "waiting": self.store.pending(name),
            "dead_letters": len(self.store.dlq(name)),
            "remote_records": self.store.id_count(name),
            "last_runs": [run_summary(r) for r in runs],
            "runbook": runbook_filename(name),
            "runbook_url": f"/admin#/runbook/{name}",
        }

    def runbook(self, name: str) -> str:
        """The sync's runbook page as ``bridgehead runbook`` writes it, with the state as it is now."""
        assert self.config is not None
        return render_runbook(self.mapping, self.config, self.store, self.check(name), mapping_path=self.mapping_path)

    def run(self, run_id: int) -> dict[str, Any]:
        found = self._runs_by_id(run_id)
        if not found:
            raise NotFound(f"no run {run_id}")
        return run_summary(found[0])

    def _runs_by_id(self, run_id: int) -> list[dict[str, Any]]:
        import sqlalchemy as sa

        from sync.state.sync_tables import RUNS

        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(RUNS).where(RUNS.c.id == run_id))]

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (``sync/alerts`` raises and clears them in the state store)."""
        return [a for a in self.store.alert_states() if a["active"]]

    def dlq(self, name: str | None) -> list[dict[str, Any]]:
        letters = self.store.dlq(self.check(name) if name else None)
        return [_letter(d) for d in letters]

    def approvals(self, name: str | None, waiting: bool) -> list[dict[str, Any]]:
        return self.store.approvals(self.check(name) if name else None, waiting=waiting)

    # -- actions -----------------------------------------------------------------------------

    def pause(self, name: str, paused: bool) -> dict[str, Any]:
        self.store.set_paused(self.check(name), paused)
        return self.sync(name)

    def run_now(self, name: str) -> RunReport:
        return self.engine().run(self.check(name))

    def replay(self, name: str | None, ids: list[int] | None) -> list[dict[str, Any]]:
        """Dead letters back to the outbox (those of ``name``, or ``ids``); the letters replayed."""
        letters = [d for d in self.dlq(name) if not ids or d["id"] in ids]
        missing = sorted(set(ids or ()) - {d["id"] for d in letters})
        if missing:
            raise NotFound(f"no dead letter {', '.join(map(str, missing[:20]))}" + (f" in {name}" if name else ""))
        if letters:
            self.store.replay(name, [d["id"] for d in letters])
        return letters

    def discard(self, letter_id: int) -> dict[str, Any]:
        gone = self.store.discard(None, [letter_id])
        if not gone:
            raise NotFound(f"no dead letter {letter_id}")
        return _letter(gone[0])

    def decide(self, run_id: int, approve: bool, by: str) -> RunReport:
        waiting = {a["run_id"]: a for a in self.store.approvals(waiting=True)}
        if run_id not in waiting:
            raise Conflict(f"run {run_id} is not waiting for approval")
        self.check(waiting[run_id]["sync"])
        engine = self.engine()
        try:
            return engine.approve(run_id, by) if approve else engine.reject(run_id, by)
        except NotAwaitingApproval:  # someone else decided between the check and here
            raise Conflict(f"run {run_id} was decided meanwhile") from None

    # -- charts ------------------------------------------------------------------------------

    def throughput(self, start: dt.datetime, step: dt.timedelta, points: int) -> list[dict[str, Any]]:
        """Records done and failed per bucket of ``step`` from ``start``, by the runs that finished then."""
        buckets = [{"at": start + step * i, "done": 0, "failed": 0, "skipped": 0} for i in range(points)]
        for r in self.store.finished_since(start):
            index = int((r["finished_at"] - start) / step)
            if 0 <= index < points:
                b = buckets[index]
                b["done"] += r["done_creates"] + r["done_updates"] + r["done_deletes"]
                b["failed"] += r["failed"]
                b["skipped"] += r["skipped"]
        return buckets


def _letter(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": d["id"],
        "sync": d["sync"],
        "key": msgspec.json.decode(d["key"]) if d["key"].startswith("[") else d["key"],
        "op": d["op"],
        "attempts": d["attempts"],
        "reason": d["last_error"],
        "created_at": d["created_at"],
        "row": None if d["row"] is None else msgspec.json.decode(d["row"]),
    }
