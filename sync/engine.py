"""One sync run: detect -> plan (outbox) -> push (leased batches) -> record, with dry-run and pause.

The outbox is what makes a run crash-safe and shareable. Planning (one worker at
a time, under a lease in the state store) writes every change to ``sync_outbox``
before any cursor moves; pushing (any number of workers) claims disjoint batches
with ``FOR UPDATE SKIP LOCKED`` leases, and a record leaves the outbox in the
same transaction that stores its fingerprint and remote id. A worker killed at
any point leaves records either delivered-and-recorded, or still in the outbox
with a lease that expires; the next run delivers them again, and every write is
idempotent at the destination (identifier upserts, ``@idempotent`` keys).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import structlog

from legacy_adapters.query.resource import bind_version
from legacy_adapters.reader import Reader
from sync.changes import make_detector
from sync.connectors.base import OutRecord
from sync.connectors.shopify import ShopifyClient, ShopifyConnector
from sync.exceptions import Deferred, Fatal, Retriable, SyncError
from sync.plan import changed, decide, referenced_fields, render

if TYPE_CHECKING:
    import httpx

    from legacy_adapters.database import Database
    from legacy_adapters.mapping.model import Mapping as LegacyMapping
    from sync.changes.base import Change
    from sync.config import SyncConfig, SyncSpec
    from sync.state.base import OutboxItem, StateStore

__all__ = ("RunReport", "SyncEngine")

log = structlog.get_logger("bridgehead.sync")
Progress = Callable[[str, int, int], None]
"""(sync, records done, records planned) after each batch: drives the CLI's progress bar."""


@dataclass
class RunReport:
    run_id: int
    sync: str
    status: str = "running"
    planned: Counter[str] = field(default_factory=Counter)
    done: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    dead_lettered: int = 0
    conflicts: int = 0
    pending_before: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


class SyncEngine:
    """Runs the syncs of one mapping. Dependencies are passed in (STYLE C11)."""

    def __init__(
        self,
        config: SyncConfig,
        mapping: LegacyMapping,
        database: Database,
        store: StateStore,
        http: httpx.Client,
        *,
        worker: str | None = None,
        progress: Progress | None = None,
        environ: Mapping[str, str] | None = None,
        clients: dict[str, ShopifyClient] | None = None,
    ) -> None:
        self.config, self.mapping, self.store, self.http = config, mapping, store, http
        self.reader = Reader(database)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.progress = progress
        self.environ = environ if environ is not None else os.environ
        self.clients = clients or {}

    # -- wiring ------------------------------------------------------------------------------

    def client(self, destination: str, attempts: int) -> ShopifyClient:
        if destination not in self.clients:
            self.clients[destination] = ShopifyClient(
                self.http, self.config.destinations[destination], attempts=attempts
            )
        return self.clients[destination]

    def _resource(self, spec: SyncSpec) -> Any:
        version = spec.version or next(iter(self.mapping.versions))
        return bind_version(self.mapping, version)[spec.resource]

    def _detector(self, name: str, spec: SyncSpec) -> Any:
        resource = self._resource(spec)
        wanted = referenced_fields(spec.fields) | {f.name for f in resource.key}
        fields = tuple(f for n, f in resource.fields.items() if n in wanted)
        return make_detector(spec.detector, name, resource, fields, self.reader, self.store)

    # -- a run -------------------------------------------------------------------------------

    def run_all(self, *, dry_run: bool = False, only: str | None = None) -> list[RunReport]:
        """Every sync in definition order (items before the stock that refers to them)."""
        return [self.run(name, dry_run=dry_run) for name in self.config.syncs if only in (None, name)]

    def run(self, name: str, *, dry_run: bool = False) -> RunReport:
        spec = self.config.syncs[name]
        if not dry_run:
            # A run whose worker died (kill -9) would otherwise stay "running" in history forever.
            for stale in self.store.abandon_stale_runs(name, self.config.lease_s):
                log.warning("sync run abandoned", sync=name, run=stale)
        report = RunReport(self.store.start_run(name, self.worker, dry_run=dry_run), name)
        if self.store.is_paused(name):
            return self._finish(report, "cancelled", "paused")
        self.store.move_run(report.run_id, "running")
        report.pending_before = self.store.pending(name)
        try:
            self._plan(name, spec, report, dry_run)
            if not dry_run:
                self._push(name, spec, report)
        except Fatal as exc:
            self.store.release(self.worker)
            return self._finish(report, "failed", str(exc))
        except _Paused:
            self.store.release(self.worker)
            return self._finish(report, "cancelled", "paused during the run")
        except Exception as exc:
            # Legacy database down, a bug: record the failure (and count it for alerts), then let it surface.
            self.store.release(self.worker)
            self._finish(report, "failed", f"{type(exc).__name__}: {exc}")
            raise
        status = "partially_failed" if report.failed or report.dead_lettered else "succeeded"
        return self._finish(report, status, None)

    def _finish(self, report: RunReport, status: str, error: str | None) -> RunReport:
        report.status, report.error = status, error
        done = {f"done_{op}s": n for op, n in report.done.items()}
        self.store.add_counts(
            report.run_id, failed=report.failed, dead_lettered=report.dead_lettered, conflicts=report.conflicts, **done
        )
        self.store.move_run(report.run_id, status, error=error)
        if status != "cancelled":
            streak = self.store.note_outcome(report.sync, status in ("failed", "partially_failed"))
            alert = self.config.alert
            if alert and streak == alert.after_failures:  # once per streak, not on every later run
                self._alert(report, streak)
        log.info("sync run finished", sync=report.sync, run=report.run_id, status=status, done=dict(report.done))
        return report

    def _alert(self, report: RunReport, streak: int) -> None:
        alert = self.config.alert
        assert alert is not None
        body = {"sync": report.sync, "consecutive_failures": streak, "run_id": report.run_id,
                "status": report.status, "error": report.error}  # fmt: skip
        try:
            if alert.webhook_url:
                self.http.post(alert.webhook_url, json=body, timeout=5)
            if alert.command:
                env = {**self.environ, "BRIDGEHEAD_SYNC": report.sync, "BRIDGEHEAD_FAILURES": str(streak)}
                subprocess.run(alert.command, shell=True, env=env, timeout=30, check=False)
        except Exception as exc:  # an alert that fails must not fail the run it reports
            log.error("sync alert failed", sync=report.sync, error=str(exc))

    # -- planning ----------------------------------------------------------------------------

    def _plan(self, name: str, spec: SyncSpec, report: RunReport, dry_run: bool) -> None:
        if not self.store.acquire_plan(name, self.worker, self.config.lease_s):
            # Another worker is planning: wait for its plan, then help push it.
            deadline = time.monotonic() + self.config.lease_s
            while self.store.plan_held(name) and time.monotonic() < deadline:
                time.sleep(0.1)
            return
        try:
            detector = self._detector(name, spec)
            for batch in detector.detect():
                self._plan_batch(name, spec, batch, report, dry_run)
            if not dry_run:
                detector.commit()
        finally:
            self.store.release_plan(name, self.worker)
        self.store.add_counts(report.run_id, **{f"planned_{op}s": n for op, n in report.planned.items()})

    def _plan_batch(self, name: str, spec: SyncSpec, batch: list[Change], report: RunReport, dry_run: bool) -> None:
        keys = [c.key for c in batch]
        entries = self.store.id_entries(name, keys)
        parked = self.store.parked(name, keys)
        waiting = self.store.outbox_prints(name, keys)
        queue, forget, accept = [], [], {}
        for change in batch:
            if change.key in parked and parked[change.key] == change.fingerprint:
                continue  # dead-lettered as it is: wait for a replay or a new version of the row
            if change.key in waiting and waiting[change.key] == change.fingerprint:
                continue  # already planned by an earlier run and still waiting (or retrying)
            entry = entries.get(change.key)
            if change.op == "delete":
                if entry is None or spec.mode != "mirror":
                    forget.append(change.key)
                    continue
                op = "delete"
            elif entry is None:
                if spec.mode == "update_only" and spec.object != "inventory":
                    continue
                op = "create"
            else:
                if spec.mode == "insert_only":
                    if change.fingerprint is not None:  # always, for an upsert
                        accept[change.key] = change.fingerprint
                    continue
                op = "update"
            report.planned[op] += 1
            if dry_run:
                if len(report.samples) < 5 and change.row is not None:
                    values = render(spec.fields, change.row, self._ref)
                    diff = changed(values, entry.sent if entry else {}, values)
                    report.samples.append({"op": op, "key": change.key, "diff": diff})
                elif len(report.samples) < 5:
                    report.samples.append({"op": op, "key": change.key, "diff": {}})
                continue
            queue.append({"key": change.key, "op": "delete" if op == "delete" else "upsert", "row": change.row,
                          "fingerprint": change.fingerprint, "changed_at": change.changed_at})  # fmt: skip
        if dry_run:
            return
        self.store.enqueue(name, queue)
        if forget:
            self.store.forget(name, forget)
        if accept:
            self.store.accept(name, accept)

    def _ref(self, sync: str, key: str, attr: str) -> Any:
        entry = self.store.id_entries(sync, [key]).get(key)
        if entry is None:
            return None
        return entry.remote_id if attr == "id" else entry.extra.get(attr)

    # -- pushing -----------------------------------------------------------------------------

    def _push(self, name: str, spec: SyncSpec, report: RunReport) -> None:
        connector = ShopifyConnector(self.client(spec.destination, spec.request_attempts), spec.object,
                                     on_delete=spec.on_delete)  # fmt: skip
        total = report.pending_before + sum(report.planned.values())
        done = 0
        size = min(spec.batch_size, connector.max_batch * 5)
        while True:
            if self.store.is_paused(name):
                raise _Paused
            items = self.store.claim(name, self.worker, report.run_id, size, self.config.lease_s)
            if not items:
                break
            self._push_batch(name, spec, connector, items, report)
            done += len(items)
            if self.progress:
                self.progress(name, done, max(total, done))

    def _push_batch(
        self, name: str, spec: SyncSpec, connector: ShopifyConnector, items: list[OutboxItem], report: RunReport
    ) -> None:
        entries = self.store.id_entries(name, [i.key for i in items])
        newest = any(f.owner == "newest" for f in spec.fields.values())
        remote = connector.fetch([e.remote_id for e in entries.values()]) if newest else {}
        records: list[OutRecord] = []
        meta: dict[str, tuple[OutboxItem, Literal["create", "update", "delete"], dict[str, Any]]] = {}
        for item in items:
            entry = entries.get(item.key)
            if item.op == "delete":
                if entry is None:
                    self.store.complete(item, None, {}, {})
                    continue
                records.append(OutRecord(item.key, "delete", {}, entry.remote_id, entry.extra))
                meta[item.key] = (item, "delete", {})
                continue
            values = render(spec.fields, item.row or {}, self._ref)
            creating = entry is None
            send, conflicts = decide(spec.fields, values, creating=creating, sent=entry.sent if entry else {},
                                     remote=remote.get(entry.remote_id) if entry else None,
                                     legacy_changed_at=item.changed_at)  # fmt: skip
            for c in conflicts:
                self.store.record_conflict(report.run_id, name, item.key, c.field, c.legacy, c.remote, c.winner)
            report.conflicts += len(conflicts)
            op: Literal["create", "update", "delete"] = "create" if creating else "update"
            if spec.object == "inventory":
                op = "update" if entry else "create"
                send = {**values, **send}  # the item and location identify the slot: always needed
            elif entry is not None and not send:  # an update with nothing to send
                self.store.complete(
                    item, entry.remote_id, entry.extra, entry.sent
                )  # nothing the legacy side may change
                report.done[op] += 1
                continue
            records.append(
                OutRecord(item.key, op, send, entry.remote_id if entry else None, entry.extra if entry else {})
            )
            meta[item.key] = (item, op, {**(entry.sent if entry else {}), **send})
        if not records:
            return
        try:
            results = connector.push(records)
        except Retriable as exc:
            results = [_failed(r.key, exc) for r in records]
        delivered = []
        for result in results:
            item, op, sent = meta[result.key]
            if result.error is None:
                entry = entries.get(item.key)
                remote_id = result.remote_id or (entry.remote_id if entry else None)
                extra = {**(entry.extra if entry else {}), **result.extra}
                delivered.append((item, remote_id, extra, sent))
                report.done[op] += 1
                continue
            spend = not isinstance(result.error, Deferred)
            dead = self.store.fail(item, report.run_id, str(result.error), max_attempts=spec.max_attempts, spend=spend)
            report.failed += 1
            report.dead_lettered += int(dead)
        self.store.complete_many(delivered)


def _failed(key: str, exc: SyncError) -> Any:
    from sync.connectors.base import PushResult

    return PushResult(key, error=exc)


class _Paused(Exception):
    """Raised between batches when the sync was paused mid-run."""
