"""An in-memory ``StateStore``: one process, gone on exit. For tests and throwaway runs.

It keeps the promises of ``sync/state/base.py`` (the contract tests run on it
too) with dicts under one lock. Rows, cursors and payloads are copied through
JSON on the way in, as the SQL store stores them, so a caller mutating a dict
afterwards cannot change what was stored; listings return the same shapes as
``SyncStore`` (payload columns as JSON text).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from legacy_adapters.redaction import redact_text
from sync.state.base import IdEntry, OutboxItem
from sync.state.memory_alerts import MemoryAlertLog
from sync.state.outcomes import redact
from sync.state.runs import COUNTS, FINAL_STATES, TRANSITIONS, FailureKind, InvalidTransition

__all__ = ("MemoryStore",)

Key = tuple[str, str]
"""(sync, encoded legacy key)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def _copy(value: Any) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value))


def _item(record: dict[str, Any]) -> OutboxItem:
    row = None if record["row"] is None else msgspec.json.decode(record["row"])
    return OutboxItem(record["id"], record["sync"], record["key"], record["op"], row, record["fingerprint"],
                      record["changed_at"], record["attempts"], record["retries"],
                      claims=record["claims"])  # fmt: skip


class MemoryStore(MemoryAlertLog):
    """Sync state in dicts; safe to share between the threads of one process."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._controls: dict[str, dict[str, Any]] = {}
        self._cursors: dict[str, str] = {}
        self._prints: dict[Key, str] = {}
        self._id_map: dict[Key, IdEntry] = {}
        self._outbox: dict[Key, dict[str, Any]] = {}
        self._runs: dict[int, dict[str, Any]] = {}
        self._errors: list[dict[str, Any]] = []
        self._conflicts: list[dict[str, Any]] = []
        self._dlq: dict[Key, dict[str, Any]] = {}
        self._plans: dict[int, dict[str, Any]] = {}
        self._approvals: dict[int, dict[str, Any]] = {}
        self._skipped: dict[Key, dict[str, Any]] = {}
        self._budgets: dict[str, dict[str, float]] = {}
        self._holds: dict[str, tuple[dt.datetime, str]] = {}
        self._usage: dict[tuple[str, str], dict[str, Any]] = {}
        self._outcomes: list[dict[str, Any]] = []

    # -- controls ----------------------------------------------------------------------------

    def _control(self, sync: str) -> dict[str, Any]:
        return self._controls.setdefault(
            sync,
            {"paused": False, "plan_owner": None, "plan_until": None, "plan_pass": None, "consecutive_failures": 0},
        )

    def set_paused(self, sync: str, paused: bool) -> None:
        with self._lock:
            self._control(sync)["paused"] = paused

    def is_paused(self, sync: str) -> bool:
        with self._lock:
            return bool(self._controls.get(sync, {}).get("paused"))

    def acquire_plan(self, sync: str, worker: str, lease_s: float, pass_id: str | None = None) -> bool:
        now = _now()
        with self._lock:
            control = self._control(sync)
            owner, until = control["plan_owner"], control["plan_until"]
            if owner is not None and owner != worker and until is not None and until >= now:
                return False
            control["plan_owner"], control["plan_until"] = worker, now + dt.timedelta(seconds=lease_s)
            control["plan_pass"] = pass_id
            return True

    def renew_plan(self, sync: str, worker: str, pass_id: str, lease_s: float) -> bool:
        with self._lock:
            control = self._control(sync)
            if control["plan_owner"] != worker or control["plan_pass"] != pass_id:
                return False
            control["plan_until"] = _now() + dt.timedelta(seconds=lease_s)
            return True

    def release_plan(self, sync: str, worker: str) -> None:
        with self._lock:
            control = self._control(sync)
            if control["plan_owner"] == worker:
                control["plan_owner"] = control["plan_until"] = control["plan_pass"] = None

    def plan_held(self, sync: str) -> bool:
        with self._lock:
            control = self._controls.get(sync, {})
            until = control.get("plan_until")
            return bool(control.get("plan_owner") and until and until > _now())

    # -- cursors and fingerprints ------------------------------------------------------------

    def get_cursor(self, sync: str) -> Any:
        with self._lock:
            text = self._cursors.get(sync)
        return None if text is None else msgspec.json.decode(text)

    def set_cursor(self, sync: str, cursor: Any) -> None:
        with self._lock:
            self._cursors[sync] = msgspec.json.encode(cursor).decode()

    def fingerprints(self, sync: str, keys: Sequence[str]) -> dict[str, str]:
        with self._lock:
            return {k: self._prints[(sync, k)] for k in keys if (sync, k) in self._prints}

    def snapshot_pass(self, sync: str) -> _MemoryPass:
        return _MemoryPass(self, sync)

    def forget(self, sync: str, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._prints.pop((sync, key), None)

    def accept(self, sync: str, prints: dict[str, str]) -> None:
        with self._lock:
            self._prints.update({(sync, k): v for k, v in prints.items()})

    # -- id map ------------------------------------------------------------------------------

    def id_entries(self, sync: str, keys: Sequence[str]) -> dict[str, IdEntry]:
        with self._lock:
            return {k: self._id_map[(sync, k)] for k in keys if (sync, k) in self._id_map}

    def id_count(self, sync: str) -> int:
        with self._lock:
            return sum(1 for s, _ in self._id_map if s == sync)

    # -- outbox ------------------------------------------------------------------------------

    def enqueue(self, sync: str, items: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            for item in items:
                planned = {
                    "op": item["op"],
                    "row": _json(item.get("row")),
                    "fingerprint": item.get("fingerprint"),
                    "changed_at": item.get("changed_at"),
                }
                current = self._outbox.get((sync, item["key"]))
                if current is not None:  # a re-plan keeps its id, spent attempts, backoff and lease
                    current.update(planned)
                    continue
                self._outbox[(sync, item["key"])] = {
                    "id": next(self._ids), "sync": sync, "key": item["key"], **planned,
                    "attempts": item.get("attempts", 0), "last_error": None, "not_before_run": 0,
                    "retries": 0, "next_attempt_at": None, "claims": 0, "lease_owner": None, "lease_until": None,
                    "enqueued_at": _now(),
                }  # fmt: skip

    def outbox_prints(self, sync: str, keys: Sequence[str]) -> dict[str, str | None]:
        with self._lock:
            return {k: self._outbox[(sync, k)]["fingerprint"] for k in keys if (sync, k) in self._outbox}

    def oldest_pending_at(self, sync: str) -> dt.datetime | None:
        with self._lock:
            times = [r["enqueued_at"] for (name, _), r in self._outbox.items() if name == sync and r.get("enqueued_at")]
        return min(times) if times else None

    def run_totals(self, sync: str) -> dict[str, Any]:
        with self._lock:
            runs = [r for r in self._runs.values() if r["sync"] == sync and not r["dry_run"]]
        by_status: dict[str, int] = {}
        for run in runs:
            by_status[run["status"]] = by_status.get(run["status"], 0) + 1
        return {
            "runs": by_status,
            "sent": sum(r["done_creates"] + r["done_updates"] + r["done_deletes"] for r in runs),
            "failed": sum(r["failed"] for r in runs),
            "dead_lettered": sum(r["dead_lettered"] for r in runs),
        }

    def budgets(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"bucket": name, **b} for name, b in self._budgets.items()]

    def pending(self, sync: str) -> int:
        with self._lock:
            return sum(1 for s, _ in self._outbox if s == sync)

    def claim(self, sync: str, worker: str, run_id: int, limit: int, lease_s: float) -> list[OutboxItem]:
        now = _now()
        with self._lock:
            free = [
                r
                for (s, _), r in self._outbox.items()
                if s == sync
                and r["not_before_run"] <= run_id
                and (r["lease_until"] is None or r["lease_until"] < now)
                and (r["next_attempt_at"] is None or r["next_attempt_at"] <= now)
            ]
            picked = sorted(free, key=lambda r: r["id"])[:limit]
            for r in picked:
                r["lease_owner"], r["lease_until"] = worker, now + dt.timedelta(seconds=lease_s)
                r["claims"] += 1
            return [_item(r) for r in picked]

    def release(self, worker: str) -> None:
        with self._lock:
            for r in self._outbox.values():
                if r["lease_owner"] == worker:
                    r["lease_owner"] = r["lease_until"] = None

    def _by_id(self, item: OutboxItem) -> dict[str, Any] | None:
        record = self._outbox.get((item.sync, item.key))
        return record if record is not None and record["id"] == item.id else None

    def complete(self, item: OutboxItem, remote_id: str | None, extra: dict[str, Any], sent: dict[str, Any]) -> None:
        self.complete_many([(item, remote_id, extra, sent)])

    def complete_many(
        self,
        done: Sequence[tuple[OutboxItem, str | None, dict[str, Any], dict[str, Any]]],
        *,
        run_id: int | None = None,
        counts: dict[str, int] | None = None,
    ) -> None:
        with self._lock:
            if run_id is not None:
                for name, value in (counts or {}).items():
                    self._runs[run_id][name] += value
            for item, remote_id, extra, sent in done:
                key = (item.sync, item.key)
                record = self._by_id(item)
                if record is not None and record["fingerprint"] == item.outbox_fingerprint:
                    del self._outbox[key]
                elif record is not None:  # re-planned while we pushed: the newer version waits
                    record["lease_owner"] = record["lease_until"] = None
                self._dlq.pop(key, None)
                self._skipped.pop(key, None)
                if item.op == "delete":
                    self._prints.pop(key, None)
                    self._id_map.pop(key, None)
                    continue
                if item.fingerprint:
                    self._prints[key] = item.fingerprint
                if remote_id:
                    self._id_map[key] = IdEntry(remote_id, _copy(extra), _copy(sent))

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
        attempts = item.attempts + (1 if kind == "refused" else 0)
        error = redact_text(error)  # what the SQL store's RedactedText columns do
        with self._lock:
            self._errors.append({"id": len(self._errors) + 1, "run_id": run_id, "sync": item.sync, "key": item.key,
                                 "error": error, "at": _now()})  # fmt: skip
            key = (item.sync, item.key)
            if kind == "refused" and attempts >= max_attempts:
                self._outbox.pop(key, None)
                previous = self._dlq.get(key)
                self._dlq[key] = {
                    "id": previous["id"] if previous else next(self._ids), "sync": item.sync, "key": item.key,
                    "op": item.op, "row": _json(item.row), "fingerprint": item.fingerprint, "attempts": attempts,
                    "last_error": error, "created_at": _now(),
                }  # fmt: skip
                return True
            record = self._by_id(item)
            if record is not None:
                record.update(attempts=attempts, last_error=error, not_before_run=run_id + 1,
                              lease_owner=None, lease_until=None)  # fmt: skip
                if kind == "transient":
                    record.update(retries=item.retries + 1,
                                  next_attempt_at=_now() + dt.timedelta(seconds=retry_in_s))  # fmt: skip
                else:  # refused or never sent: this claim is settled
                    record["claims"] = max(0, item.claims - 1)
            return False

    def drop(self, item: OutboxItem) -> None:
        with self._lock:
            record = self._by_id(item)
            if record is not None and record["fingerprint"] == item.outbox_fingerprint:
                del self._outbox[(item.sync, item.key)]
            elif record is not None:
                record["lease_owner"] = record["lease_until"] = None

    def skip(self, item: OutboxItem, run_id: int, reason: str) -> None:
        with self._lock:
            self.drop(item)
            self._skipped[(item.sync, item.key)] = {"sync": item.sync, "key": item.key,
                                                    "fingerprint": item.fingerprint, "reason": redact_text(reason),
                                                    "run_id": run_id, "at": _now()}  # fmt: skip
            self._runs[run_id]["skipped"] += 1

    def skipped(self, sync: str, keys: Sequence[str]) -> dict[str, str | None]:
        with self._lock:
            return {k: self._skipped[(sync, k)]["fingerprint"] for k in keys if (sync, k) in self._skipped}

    def skipped_records(self, sync: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = [dict(r) for r in self._skipped.values() if sync in (None, "", r["sync"])]
        return sorted(found, key=lambda r: (r["sync"], r["key"]))

    # -- the rate budget ---------------------------------------------------------------------

    def take_budget(self, bucket: str, cost: float, *, maximum: float, restore_rate: float, now: float) -> float:
        with self._lock:
            fresh = {"maximum": maximum, "available": maximum, "restore_rate": restore_rate, "at": now, "observed": 0.0}
            b = self._budgets.setdefault(bucket, fresh)
            projected = min(b["maximum"], b["available"] + max(0.0, now - b["at"]) * b["restore_rate"])
            need = min(cost, b["maximum"])
            if projected < need:
                return (need - projected) / b["restore_rate"]
            b["available"], b["at"] = projected - need, max(now, b["at"])
            return 0.0

    def observe_budget(self, bucket: str, *, maximum: float, available: float, restore_rate: float, now: float) -> None:
        with self._lock:
            b = self._budgets.get(bucket)
            if b is None:
                return
            projected = min(b["maximum"], b["available"] + max(0.0, now - b["at"]) * b["restore_rate"])
            value = min(projected, available) if b["observed"] else available
            b.update(maximum=maximum, available=min(value, maximum), restore_rate=restore_rate or 1.0,
                     at=max(now, b["at"]), observed=1.0)  # fmt: skip

    # -- destination holds and API usage -------------------------------------------------------

    def hold_destination(self, destination: str, until: dt.datetime, reason: str) -> None:
        with self._lock:
            self._holds[destination] = (until, redact_text(reason))

    def destination_hold(self, destination: str, now: dt.datetime | None = None) -> tuple[dt.datetime, str] | None:
        with self._lock:
            hold = self._holds.get(destination)
        return hold if hold is not None and hold[0] > (now or _now()) else None

    def add_usage(self, account: str, day: str, *, calls: int, bytes_in: int, bytes_out: int) -> None:
        with self._lock:
            row = self._usage.setdefault((account, day), {"account": account, "day": day, "calls": 0, "bytes_in": 0,
                                                          "bytes_out": 0})  # fmt: skip
            row["calls"] += calls
            row["bytes_in"] += bytes_in
            row["bytes_out"] += bytes_out

    def usage(self, days: int = 7) -> list[dict[str, Any]]:
        since = (_now() - dt.timedelta(days=days - 1)).strftime("%Y-%m-%d")
        with self._lock:
            rows = [dict(r) for r in self._usage.values() if r["day"] >= since]
        return sorted(rows, key=lambda r: (-int(r["day"].replace("-", "")), r["account"]))

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, sync: str, worker: str, *, dry_run: bool = False) -> int:
        with self._lock:
            run_id = len(self._runs) + 1
            self._runs[run_id] = {
                "id": run_id, "sync": sync, "status": "queued", "worker": worker, "dry_run": dry_run,
                "started_at": _now(), "finished_at": None, **dict.fromkeys(COUNTS, 0), "error": None,
            }  # fmt: skip
            return run_id

    def move_run(self, run_id: int, status: str, *, error: str | None = None) -> None:
        with self._lock:
            run = self._runs[run_id]
            if status not in TRANSITIONS.get(run["status"], frozenset()):
                raise InvalidTransition(f"run {run_id}: {run['status']} -> {status}")
            run["status"] = status
            if status in FINAL_STATES:
                run["finished_at"], run["error"] = _now(), _redacted(error)

    def add_counts(self, run_id: int, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                self._runs[run_id][name] += value

    def runs(self, sync: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            found = [dict(r) for r in reversed(self._runs.values()) if sync in (None, "", r["sync"])]
        return found[:limit]

    def abandon_stale_runs(self, sync: str, grace_s: float) -> list[int]:
        now = _now()
        with self._lock:
            control = self._controls.get(sync, {})
            live = {r["lease_owner"] for (s, _), r in self._outbox.items() if s == sync and r["lease_until"]
                    and r["lease_until"] > now}  # fmt: skip
            if control.get("plan_owner") and control.get("plan_until") and control["plan_until"] > now:
                live.add(control["plan_owner"])
            cutoff = now - dt.timedelta(seconds=grace_s)
            stale = [r for r in self._runs.values() if r["sync"] == sync and r["status"] in ("queued", "running")
                     and r["worker"] not in live and r["started_at"] < cutoff]  # fmt: skip
            for run in stale:
                error = f"abandoned: worker {run['worker']} stopped without finishing (no live lease)"
                run.update(status="abandoned", finished_at=now, error=error)
            return [r["id"] for r in stale]

    def note_outcome(self, sync: str, failing: bool) -> int:
        with self._lock:
            control = self._control(sync)
            control["consecutive_failures"] = control["consecutive_failures"] + 1 if failing else 0
            return int(control["consecutive_failures"])

    def record_errors(self, run_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._errors if e["run_id"] == run_id]

    def record_conflict(
        self, run_id: int, sync: str, key: str, field: str, legacy: Any, remote: Any, winner: str
    ) -> None:
        with self._lock:
            self._conflicts.append({
                "id": len(self._conflicts) + 1, "run_id": run_id, "sync": sync, "key": key, "field": field,
                "legacy_value": _json(legacy), "remote_value": _json(remote), "winner": winner, "at": _now(),
            })  # fmt: skip

    def conflicts(
        self, sync: str | None = None, *, run_id: int | None = None, key: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        return self._listing(self._conflicts, sync, run_id, key, limit)

    def errors(
        self, sync: str | None = None, *, run_id: int | None = None, key: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        return self._listing(self._errors, sync, run_id, key, limit)

    def _listing(
        self, rows: list[dict[str, Any]], sync: str | None, run_id: int | None, key: str | None, limit: int
    ) -> list[dict[str, Any]]:
        wanted = {"sync": sync, "run_id": run_id, "key": key}
        with self._lock:
            found = [dict(r) for r in rows if all(v is None or r[k] == v for k, v in wanted.items())]
        return found[:limit]

    # -- dead-letter queue -------------------------------------------------------------------

    def dlq(self, sync: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            letters = [dict(d) for d in self._dlq.values() if sync in (None, "", d["sync"])]
        return sorted(letters, key=lambda d: d["id"])

    def parked(self, sync: str, keys: Sequence[str]) -> dict[str, str | None]:
        with self._lock:
            return {k: self._dlq[(sync, k)]["fingerprint"] for k in keys if (sync, k) in self._dlq}

    def replay(self, sync: str | None = None, ids: Sequence[int] | None = None) -> int:
        with self._lock:
            letters = [d for d in self._dlq.values() if sync in (None, "", d["sync"]) and (not ids or d["id"] in ids)]
            for d in letters:
                del self._dlq[(d["sync"], d["key"])]
                existing = self._outbox.get((d["sync"], d["key"]))
                self._outbox[(d["sync"], d["key"])] = {
                    "id": existing["id"] if existing else next(self._ids), "sync": d["sync"], "key": d["key"],
                    "op": d["op"], "row": d["row"], "fingerprint": d["fingerprint"], "changed_at": None,
                    "attempts": 0, "last_error": None, "not_before_run": 0, "retries": 0, "next_attempt_at": None,
                    "claims": 0, "lease_owner": None, "lease_until": None,
                }  # fmt: skip
            return len(letters)

    def discard(self, sync: str | None = None, ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            letters = [d for d in self._dlq.values() if sync in (None, "", d["sync"]) and (not ids or d["id"] in ids)]
            for d in letters:
                del self._dlq[(d["sync"], d["key"])]
                if d["fingerprint"] is not None:
                    self._prints[(d["sync"], d["key"])] = d["fingerprint"]
            return sorted((dict(d) for d in letters), key=lambda d: d["id"])

    # -- row-level outcomes (sync/state/outcomes.py) -----------------------------------------

    def record_outcomes(self, run_id: int, sync: str, outcomes: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            for o in outcomes:
                self._outcomes.append({
                    "id": next(self._ids), "run_id": run_id, "sync": sync, "key": o["key"], "outcome": o["outcome"],
                    "request": _copy(redact(o.get("request"))), "answer": _copy(redact(o.get("answer"))),
                    "error": _redacted(o.get("error")), "at": _now(),
                })  # fmt: skip

    def outcomes(
        self, run_id: int, *, key: str | None = None, outcome: str | None = None, limit: int = 100, after_id: int = 0
    ) -> list[dict[str, Any]]:
        with self._lock:
            found = [dict(o) for o in self._outcomes if o["run_id"] == run_id and o["id"] > after_id
                     and (not key or key in o["key"]) and (not outcome or o["outcome"] == outcome)]  # fmt: skip
        return found[:limit]

    def prune_outcomes(self, older_than: dt.datetime) -> int:
        with self._lock:
            kept = [o for o in self._outcomes if o["at"] >= older_than]
            gone, self._outcomes = len(self._outcomes) - len(kept), kept
            return gone

    # -- approval gate (sync/state/approvals.py) ---------------------------------------------

    def record_plan(self, run_id: int, sync: str, source_rows: int | None, spec_hash: str) -> None:
        with self._lock:
            self._plans[run_id] = {"run_id": run_id, "sync": sync, "source_rows": source_rows, "spec_hash": spec_hash}

    def recent_plans(self, sync: str, statuses: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
        with self._lock:
            found = [{k: p[k] for k in ("run_id", "source_rows", "spec_hash")}
                     for run_id, p in sorted(self._plans.items(), reverse=True)
                     if p["sync"] == sync and self._runs.get(run_id, {}).get("status") in statuses]  # fmt: skip
        return found[:limit]

    def request_approval(self, run_id: int, sync: str, reason: str, plan: dict[str, Any]) -> None:
        with self._lock:
            self._approvals[run_id] = {"run_id": run_id, "sync": sync, "reason": redact_text(reason),
                                       "plan": _copy(plan), "requested_at": _now(), "decision": None,
                                       "decided_by": None, "decided_at": None}  # fmt: skip

    def awaiting_approval(self, sync: str) -> int | None:
        with self._lock:
            return next((r for r, a in sorted(self._approvals.items()) if a["sync"] == sync
                         and a["decision"] is None), None)  # fmt: skip

    def approvals(self, sync: str | None = None, *, waiting: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            return [_copy_approval(a) for _, a in sorted(self._approvals.items())
                    if sync in (None, "", a["sync"]) and (not waiting or a["decision"] is None)]  # fmt: skip

    def decide_approval(self, run_id: int, decision: str, by: str) -> dict[str, Any]:
        from sync.state.approvals import NotAwaitingApproval

        with self._lock:
            approval = self._approvals.get(run_id)
            if approval is None or approval["decision"] is not None:
                raise NotAwaitingApproval(f"run {run_id} is not waiting for approval")
            approval.update(decision=decision, decided_by=by, decided_at=_now())
            return _copy_approval(approval)

    def discard_plan(self, sync: str) -> int:
        with self._lock:
            keys = [k for k in self._outbox if k[0] == sync]
            for k in keys:
                del self._outbox[k]
            self._cursors.pop(sync, None)
            return len(keys)


def _copy_approval(approval: dict[str, Any]) -> dict[str, Any]:
    return {**approval, "plan": _copy(approval["plan"])}


class _MemoryPass:
    """A pass's seen set: a Python set of its own."""

    def __init__(self, store: MemoryStore, sync: str) -> None:
        self.store, self.sync = store, sync
        self.seen: set[str] | None = set()

    def _live(self) -> set[str]:
        if self.seen is None:
            raise RuntimeError("the snapshot pass is closed")
        return self.seen

    def see(self, prints: Sequence[tuple[str, str]]) -> list[int]:
        seen = self._live()
        with self.store._lock:
            stored = self.store._prints
            seen.update(k for k, _ in prints)
            return [n for n, (k, p) in enumerate(prints) if stored.get((self.sync, k)) != p]

    def unseen(self, batch_size: int = 5000) -> Iterator[list[str]]:
        seen = self._live()
        with self.store._lock:
            gone = sorted(k for s, k in self.store._prints if s == self.sync and k not in seen)
        for start in range(0, len(gone), batch_size):
            yield gone[start : start + batch_size]

    def close(self) -> None:
        self.seen = None

    def __enter__(self) -> _MemoryPass:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _redacted(text: str | None) -> str | None:
    return None if text is None else redact_text(text)
