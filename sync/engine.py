"""One sync run: detect -> plan (outbox) -> push (leased batches) -> record, with dry-run and pause.

The outbox is what makes a run crash-safe and shareable. Planning (one worker at
a time, under a lease in the state store) writes every change to ``sync_outbox``
before any cursor moves; pushing (any number of workers) claims disjoint batches
with ``FOR UPDATE SKIP LOCKED`` leases, and a record leaves the outbox in the
same transaction that stores its fingerprint and remote id. A worker killed at
any point leaves records either delivered-and-recorded, or still in the outbox
with a lease that expires; the next run delivers them again, and every write is
idempotent at the destination (identifier upserts, ``@idempotent`` keys).

What a failure costs is decided per record and per request, never per run:

- a claimed batch goes out one request-sized chunk at a time, and each chunk's
  delivered records are recorded (with the run's counts) before the next is sent,
  so an applied record is never failed with the rest of its batch;
- a transient failure (5xx, 429, timeouts, THROTTLED, on the write or on the
  read of ``newest`` fields) backs the record off across runs and never spends
  an attempt; only the destination's refusal does, and only that dead-letters;
- every record is re-read from the legacy database just before it is sent: a
  retry or a replay sends the row as it is now, and a record whose row is gone or
  already delivered as it is leaves the outbox without a write;
- a record that refers to a parent the shop does not have, and that no run is
  going to deliver (a stock row of a deleted item), gets a final ``skipped``
  outcome with the reason instead of being deferred forever;
- an exception in one sync ends that run ``failed`` and the others still run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import structlog

from legacy_adapters.exceptions import MappingError
from legacy_adapters.migration.routing import RoutedReader, open_databases
from legacy_adapters.query.resource import bind_version
from legacy_adapters.reader import Reader
from legacy_adapters.redaction import redact_text
from sync.alerts.monitor import AlertMonitor
from sync.approval import assess, spec_hash
from sync.changes import encode_key, make_detector
from sync.connectors.base import Connector, OutRecord, PushResult
from sync.connectors.registry import ConnectorContext, plugin
from sync.exceptions import Deferred, Fatal, LeaseLost, QuotaExhausted, Retriable
from sync.metrics import observe_run
from sync.numbers import Rounded
from sync.plan import decide, preview, referenced_fields, render
from sync.retry import next_attempt_in
from sync.state.approvals import COMPLETED, PROCEEDED

if TYPE_CHECKING:
    import httpx

    from legacy_adapters.database import Database
    from legacy_adapters.mapping.model import Mapping as LegacyMapping
    from sync.changes.base import Change
    from sync.config import SyncConfig, SyncSpec
    from sync.state.base import OutboxItem, StateStore

__all__ = ("RunReport", "SyncEngine", "matches")

log = structlog.get_logger("bridgehead.sync")
CONNECTOR_TTL_S = 600.0
"""How long a sync's connector (and what it caches, such as the shop's locations) is kept."""
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
    """Records that failed this run (refused, or transient and backing off)."""
    dead_lettered: int = 0
    conflicts: int = 0
    source_rows: int | None = None
    """Rows a full pass read (snapshot detectors), for the approval gate's count check."""
    rounded: int = 0
    """Values delivered after rounding (a fractional quantity, a price with more decimals than the currency)."""
    skipped: int = 0
    """Records given a final outcome without a write (their reason is in ``sync_skipped``)."""
    deferred: int = 0
    """Records waiting on a parent that another sync has planned but not delivered yet."""
    pending_before: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


class SyncEngine:
    """Runs the syncs of one mapping. Dependencies are passed in (STYLE C11). Thread-safe: the
    loop runs each sync in its own thread on one engine."""

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
        clients: dict[str, Any] | None = None,
    ) -> None:
        self.config, self.mapping, self.store, self.http = config, mapping, store, http
        # Each resource is read where its migration phase says: the clean table once it is the
        # source of truth (cutover), so change detection follows the data (docs/migration.md).
        self.reader: Reader = RoutedReader(
            mapping, open_databases(mapping, database), {v: bind_version(mapping, v) for v in mapping.versions}
        )
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.progress = progress
        self.environ = environ if environ is not None else os.environ
        self.clients = clients or {}
        self._connectors: dict[str, tuple[float, Connector]] = {}
        self._lock = threading.Lock()
        self.alerts = AlertMonitor(config, store, http, environ=self.environ)

    # -- wiring ------------------------------------------------------------------------------

    def client(self, destination: str, attempts: int) -> Any:
        with self._lock:
            return self.client_locked(destination, attempts)

    def client_locked(self, destination: str, attempts: int) -> Any:
        """The destination's shared client (rate budget, token, tenant), made by its kind's plugin."""
        if destination not in self.clients:
            config = self.config.destinations[destination]
            context = ConnectorContext(self.http, self.store, self.environ)
            self.clients[destination] = plugin(config.kind).client(context, destination, config, attempts)
        return self.clients[destination]

    def connector(self, name: str, spec: SyncSpec) -> Connector:
        """The sync's connector, kept for ``CONNECTOR_TTL_S``: what it caches (the shop's locations, a
        252-point read) is not paid again on every stock run while a long items run drains the bucket."""
        with self._lock:
            made, connector = self._connectors.get(name, (0.0, None))
            if connector is None or time.monotonic() - made > CONNECTOR_TTL_S:
                client = self.client_locked(spec.destination, spec.request_attempts)
                kind = self.config.destinations[spec.destination].kind
                connector = plugin(kind).connector(client, spec)
                self._connectors[name] = (time.monotonic(), connector)
            return connector

    def _resource(self, spec: SyncSpec) -> Any:
        version = spec.version or next(iter(self.mapping.versions))
        return bind_version(self.mapping, version)[spec.resource]

    def _detector(self, name: str, spec: SyncSpec, lease: _PlanLease | None = None) -> Any:
        resource = self._resource(spec)
        if spec.detector.kind == "change_tracking" and resource.spec.phase == "cutover":
            # CHANGETABLE belongs to the legacy table, which is no longer the source of truth.
            raise MappingError(
                f"{spec.resource} is cut over to {resource.spec.migration.to!r}: change_tracking reads the legacy "
                "table's change table; use detector kind snapshot_hash or high_water",
                path=f"sync.syncs.{name}.detector.kind",
            )
        wanted = referenced_fields(spec.fields) | {f.name for f in resource.key} | set(spec.filter or ())
        fields = tuple(f for n, f in resource.fields.items() if n in wanted)
        return make_detector(spec.detector, name, resource, fields, self.reader, self.store, lease)

    # -- a run -------------------------------------------------------------------------------

    def run_all(self, *, dry_run: bool = False, only: str | None = None) -> list[RunReport]:
        """Every sync in definition order (items before the stock that refers to them); one failing
        sync is reported and the next still runs."""
        return [self.run(name, dry_run=dry_run) for name in self.config.syncs if only in (None, name)]

    def run(self, name: str, *, dry_run: bool = False) -> RunReport:
        """One run of ``name``; never raises for what goes wrong inside it (the report says)."""
        spec = self.config.syncs[name]
        if dry_run:
            return self._dry_run(name, spec)
        # A run whose worker died (kill -9) would otherwise stay "running" in history forever.
        for stale in self.store.abandon_stale_runs(name, self.config.lease_s):
            log.warning("sync run abandoned", sync=name, run=stale)
        report = RunReport(self.store.start_run(name, self.worker), name)
        # Row-level outcomes are kept for a configured number of days (the console's run detail).
        self.store.prune_outcomes(dt.datetime.now(dt.UTC) - dt.timedelta(days=self.config.outcome_retention_days))
        if self.store.is_paused(name):
            return self._finish(report, "cancelled", "paused")
        if (hold := self.store.destination_hold(spec.destination)) is not None:
            return self._finish(report, "cancelled", _hold_text(spec.destination, hold))
        if (held := self.store.awaiting_approval(name)) is not None:
            return self._finish(report, "cancelled", f"run {held} is waiting for approval")
        self.store.move_run(report.run_id, "running")
        report.pending_before = self.store.pending(name)
        return self._execute(name, spec, report, plan=True)

    def _execute(self, name: str, spec: SyncSpec, report: RunReport, *, plan: bool) -> RunReport:
        try:
            if plan:
                self._plan(name, spec, report, False)
                if (reason := self._risk(name, spec, report)) is not None:
                    return self._hold(report, reason)  # the approval gate: between planning and sending
            self._push(name, spec, report)
        except Fatal as exc:
            self.store.release(self.worker)
            return self._finish(report, "failed", str(exc))
        except _Paused as stop:
            self.store.release(self.worker)
            return self._finish(report, "cancelled", stop.reason)
        except QuotaExhausted as exc:
            # A spent quota (Xero's day limit): every request until the reset would be refused, so
            # the destination is held until then (every sync and worker sees it) instead of retrying.
            self.store.hold_destination(spec.destination, exc.until, str(exc))
            self.store.release(self.worker)
            log.warning("sync paused by a destination quota", sync=name, until=exc.until.isoformat(), reason=str(exc))
            return self._finish(report, "cancelled", _hold_text(spec.destination, (exc.until, str(exc))))
        except Exception as exc:
            # Legacy database down, the shop down past every retry, a bug: this run failed (and counts
            # for alerts), its records wait in the outbox, and the other syncs and the loop go on.
            log.exception("sync run failed", sync=name, run=report.run_id)
            self.store.release(self.worker)
            return self._finish(report, "failed", f"{type(exc).__name__}: {exc}")
        status = "partially_failed" if report.failed or report.dead_lettered else "succeeded"
        return self._finish(report, status, None)

    # -- the approval gate (sync/approval.py) -------------------------------------------------

    def _risk(self, name: str, spec: SyncSpec, report: RunReport) -> str | None:
        proceeded = self.store.recent_plans(name, PROCEEDED, 1)
        completed = self.store.recent_plans(name, COMPLETED, spec.approval.history)
        current = spec_hash(spec)
        self.store.record_plan(report.run_id, name, report.source_rows, current)
        return assess(
            spec, planned=report.planned, remote_records=self.store.id_count(name), source_rows=report.source_rows,
            recent_rows=[p["source_rows"] for p in completed if p["source_rows"] is not None],
            last_spec_hash=proceeded[0]["spec_hash"] if proceeded else None,
        ).reason  # fmt: skip

    def _hold(self, report: RunReport, reason: str) -> RunReport:
        plan = {"planned": dict(report.planned), "remote_records": self.store.id_count(report.sync),
                "source_rows": report.source_rows, "samples": report.samples}  # fmt: skip
        self.store.request_approval(report.run_id, report.sync, reason, plan)
        self.store.move_run(report.run_id, "awaiting_approval")
        report.status, report.error = "awaiting_approval", reason
        log.warning("sync run awaits approval", sync=report.sync, run=report.run_id, reason=reason)
        observe_run(report)
        self.alerts.safely([report.sync])  # a held sync sends nothing until someone looks: tell them now
        return report

    def approve(self, run_id: int, by: str) -> RunReport:
        """Send a run that waits for approval, recording who decided."""
        approval = self.store.decide_approval(run_id, "approved", by)
        name = approval["sync"]
        report = RunReport(run_id, name, planned=Counter(approval["plan"]["planned"]))
        self.store.move_run(run_id, "running")
        report.pending_before = self.store.pending(name)
        return self._execute(name, self.config.syncs[name], report, plan=False)

    def reject(self, run_id: int, by: str) -> RunReport:
        """Cancel a run that waits for approval and drop its plan; the next run plans from the source again."""
        approval = self.store.decide_approval(run_id, "rejected", by)
        report = RunReport(run_id, approval["sync"], planned=Counter(approval["plan"]["planned"]))
        self.store.discard_plan(report.sync)
        return self._finish(report, "cancelled", f"rejected by {by}")

    def _dry_run(self, name: str, spec: SyncSpec) -> RunReport:
        """Plan without sending or recording: no run in history, no cursor moved, nothing in the outbox."""
        report = RunReport(0, name, status="dry_run")
        report.pending_before = self.store.pending(name)
        self._plan(name, spec, report, dry_run=True)
        return report

    def _finish(self, report: RunReport, status: str, error: str | None) -> RunReport:
        # The report is shown as it is (``bridgehead sync run`` prints it, the console's "run now" answers
        # it): redacted like the stored copy, since its text is what a destination or driver said.
        report.status, report.error = status, None if error is None else redact_text(error)
        # Done and skipped counts went in as the records were recorded (a killed run keeps them).
        self.store.add_counts(report.run_id, failed=report.failed, dead_lettered=report.dead_lettered,
                              conflicts=report.conflicts)  # fmt: skip
        self.store.move_run(report.run_id, status, error=error)
        if status != "cancelled":
            self.store.note_outcome(report.sync, status in ("failed", "partially_failed"))
        log.info("sync run finished", sync=report.sync, run=report.run_id, status=status, done=dict(report.done))
        observe_run(report)
        self.alerts.safely([report.sync])  # raised or cleared once per change, whichever worker sees it first
        return report

    # -- planning ----------------------------------------------------------------------------

    def _plan(self, name: str, spec: SyncSpec, report: RunReport, dry_run: bool) -> None:
        lease = _PlanLease(self.store, name, self.worker, self.config.lease_s)
        if not self.store.acquire_plan(name, self.worker, self.config.lease_s, lease.pass_id):
            # Another worker is planning: wait for its plan, then help push it.
            deadline = time.monotonic() + self.config.lease_s
            while self.store.plan_held(name) and time.monotonic() < deadline:
                time.sleep(0.1)
            return
        detector = self._detector(name, spec, lease)
        try:
            for batch in detector.detect():
                lease.renew()
                self._plan_batch(name, spec, batch, report, dry_run)
            report.source_rows = getattr(detector, "rows_seen", None)
            if dry_run:
                detector.abandon()
            else:
                lease.renew()  # the cursor moves only for a pass that still holds the lease
                detector.commit()
        except LeaseLost as exc:
            # Another worker planned meanwhile: what this pass planned stands (records are re-read
            # before they are sent), nothing more is planned and the cursor stays.
            log.warning("sync planning lease lost", sync=name, run=report.run_id, error=str(exc))
            detector.abandon()
        except BaseException:
            detector.abandon()
            raise
        finally:
            self.store.release_plan(name, self.worker)
        if not dry_run:
            self.store.add_counts(report.run_id, **{f"planned_{op}s": n for op, n in report.planned.items()})

    def _plan_batch(self, name: str, spec: SyncSpec, batch: list[Change], report: RunReport, dry_run: bool) -> None:
        keys = [c.key for c in batch]
        entries = self.store.id_entries(name, keys)
        parked = self.store.parked(name, keys)
        skipped = self.store.skipped(name, keys)
        waiting = self.store.outbox_prints(name, keys)
        queue, forget, accept = [], [], {}
        for change in batch:
            if change.key in parked and parked[change.key] == change.fingerprint:
                continue  # dead-lettered as it is: wait for a replay or a new version of the row
            if change.key in waiting and waiting[change.key] == change.fingerprint:
                continue  # already planned by an earlier run and still waiting (or retrying)
            if (
                change.key in skipped
                and skipped[change.key] == change.fingerprint
                and self._missing_parent(spec, change.row) is not None
            ):
                continue  # skipped as it is, and what it waits for is still not in the shop
            entry = entries.get(change.key)
            if change.op != "delete" and not matches(spec, change.row):
                # Outside the sync's filter (a job not complete yet): nothing to send. Accepted as it is,
                # so it is planned again only when the row changes (and may then match).
                if change.fingerprint is not None:
                    accept[change.key] = change.fingerprint
                continue
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
            if len(report.samples) < (5 if dry_run else 20):  # the dry run's output, or an approval's diff
                diff, rounded = (
                    ({}, {})
                    if change.row is None
                    else preview(spec.fields, change.row, entry.sent if entry else None, self._ref)
                )
                report.samples.append({"op": op, "key": change.key, "diff": diff,
                                       "rounded": {f: r.as_dict() for f, r in rounded.items()}})  # fmt: skip
            if dry_run:
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
        return _ref_value(self.store.id_entries(sync, [key]).get(key), attr)

    def _parents(self, spec: SyncSpec, rows: list[dict[str, Any] | None]) -> dict[tuple[str, str], Any]:
        """Every parent record the rows refer to, read once per chunk (not once per field and row)."""
        wanted: dict[str, set[str]] = {}
        for fmap in spec.fields.values():
            if fmap.ref is not None:
                keys = wanted.setdefault(fmap.ref.sync, set())
                keys.update(encode_key([row.get(fmap.field or "")]) for row in rows if row is not None)
        found: dict[tuple[str, str], Any] = {}
        for sync, keys in wanted.items():
            for key, entry in self.store.id_entries(sync, sorted(keys)).items():
                found[(sync, key)] = entry
        return found

    def _missing_parent(
        self, spec: SyncSpec, row: dict[str, Any] | None, parents: dict[tuple[str, str], Any] | None = None
    ) -> tuple[str, str] | None:
        """The first (sync, key) this row refers to that has no remote record yet, if any."""
        for fmap in spec.fields.values():
            if fmap.ref is None or row is None:
                continue
            parent = encode_key([row.get(fmap.field or "")])
            known = (fmap.ref.sync, parent) in parents if parents is not None else self.store.id_entries(
                fmap.ref.sync, [parent])  # fmt: skip
            if not known:
                return fmap.ref.sync, parent
        return None

    # -- pushing -----------------------------------------------------------------------------

    def _push(self, name: str, spec: SyncSpec, report: RunReport) -> None:
        connector = self.connector(name, spec)
        detector = self._detector(name, spec)
        total = report.pending_before + sum(report.planned.values())
        done = 0
        size = min(spec.batch_size, connector.max_batch * 5)
        while True:
            if self.store.is_paused(name):
                raise _Paused("paused during the run")
            if (held := self.store.awaiting_approval(name)) is not None:
                raise _Paused(f"run {held} is waiting for approval")  # another worker's plan was held
            items = self.store.claim(name, self.worker, report.run_id, size, self.config.lease_s)
            if not items:
                break
            # One request-sized chunk at a time, each recorded before the next goes out.
            for start in range(0, len(items), connector.max_batch):
                self._push_chunk(name, spec, connector, detector, items[start : start + connector.max_batch], report)
            done += len(items)
            if self.progress:
                self.progress(name, done, max(total, done))

    def _refresh(self, detector: Any, items: list[OutboxItem]) -> list[OutboxItem]:
        """The items as their rows are now; items whose row is gone, or already delivered as it is, leave.

        Leaving is safe only when no earlier attempt may have reached the shop. After a transient
        failure (a timeout after the write) or a lapsed claim (a worker killed after the shop took
        the write) the shop may hold what we never recorded, so the record is sent anyway: the
        current row, or, when the row is gone, the planned one, so that its remote record becomes
        known and a pass that sees deletes removes it.
        """
        now, unreadable = detector.current([i.key for i in items])
        delivered = self.store.fingerprints(items[0].sync, [i.key for i in items]) if items else {}
        fresh = []
        for item in items:
            if item.key in unreadable:
                fresh.append(item)
                continue
            row = now.get(item.key)
            maybe_applied = item.retries > 0 or item.claims > 1
            if row is None:
                if item.op == "delete" or maybe_applied:
                    fresh.append(item)
                else:
                    self.store.drop(item)  # gone before anything went out: a pass that sees deletes plans it
                continue
            if item.op == "delete" and not maybe_applied:
                self.store.drop(item)  # back in the source and never deleted remotely: nothing to undo
                continue
            if item.op != "delete" and delivered.get(item.key) == row.fingerprint and not maybe_applied:
                self.store.drop(item)  # already delivered as it is now (A -> B -> A before B went out)
                continue
            if item.op != "delete" and not matches(self.config.syncs[item.sync], row.row) and not maybe_applied:
                self.store.drop(item)  # left the sync's filter before it went out (a job reopened)
                continue
            # Send the row as it is now (a delete that may have been applied is undone by an upsert).
            fresh.append(dataclasses.replace(item, op="upsert", row=row.row, fingerprint=row.fingerprint,
                                             changed_at=row.changed_at or item.changed_at,
                                             planned_fingerprint=item.fingerprint, refreshed=True))  # fmt: skip
        return fresh

    def _push_chunk(
        self,
        name: str,
        spec: SyncSpec,
        connector: Connector,
        detector: Any,
        claimed: list[OutboxItem],
        report: RunReport,
    ) -> None:
        items = self._refresh(detector, claimed)
        if not items:
            return
        entries = self.store.id_entries(name, [i.key for i in items])
        newest = any(f.owner == "newest" for f in spec.fields.values())
        try:
            remote = connector.fetch([e.remote_id for e in entries.values()]) if newest and entries else {}
        except Retriable as exc:
            failed = [_failed(i.key, exc) for i in items]
            self._record(name, spec, report, {}, [(i, "update", {}) for i in items], failed)
            return
        parents = self._parents(spec, [i.row for i in items if i.op != "delete"])

        def ref(sync: str, key: str, attr: str) -> Any:
            return _ref_value(parents.get((sync, key)), attr)

        records: list[OutRecord]
        meta: list[tuple[OutboxItem, str, dict[str, Any]]]
        records, meta = [], []
        notes: dict[str, dict[str, dict[str, str]]] = {}  # key -> field -> how it was rounded
        for item in items:
            entry = entries.get(item.key)
            if item.op == "delete":
                if entry is None:
                    self.store.complete(item, None, {}, {})
                    continue
                records.append(OutRecord(item.key, "delete", {}, entry.remote_id, entry.extra))
                meta.append((item, "delete", {}))
                continue
            rounded: dict[str, Rounded] = {}
            values = render(spec.fields, item.row or {}, ref, rounded)
            missing = self._missing_parent(spec, item.row, parents)
            if missing is not None:
                self._park_orphan(name, item, missing, report)
                continue
            creating = entry is None
            send, conflicts = decide(spec.fields, values, creating=creating, sent=entry.sent if entry else {},
                                     remote=remote.get(entry.remote_id) if entry else None,
                                     legacy_changed_at=item.changed_at)  # fmt: skip
            for c in conflicts:
                self.store.record_conflict(report.run_id, name, item.key, c.field, c.legacy, c.remote, c.winner)
            report.conflicts += len(conflicts)
            op: Literal["create", "update", "delete"] = "create" if creating else "update"
            if spec.object == "inventory":
                send = {**values, **send}  # the item and location identify the slot: always needed
            elif not creating and not send:
                # Nothing the legacy side may change: recorded as delivered, no request.
                assert entry is not None  # not creating: the entry exists
                self.store.complete_many([(item, entry.remote_id, entry.extra, entry.sent)], run_id=report.run_id,
                                         counts={f"done_{op}s": 1})  # fmt: skip
                self.store.record_outcomes(report.run_id, name, [{"key": item.key, "outcome": "unchanged"}])
                report.done[op] += 1
                continue
            send_id = f"{report.run_id}:{item.id}:{item.fingerprint}"  # one key per real send (issue 12, item 1)
            records.append(
                OutRecord(item.key, op, send, entry.remote_id if entry else None, entry.extra if entry else {}, send_id)
            )
            meta.append((item, op, {**(entry.sent if entry else {}), **send}))
            notes[item.key] = {f: r.as_dict() for f, r in rounded.items() if f in send}
        if not records:
            return
        try:
            results = connector.push(records)
        except Retriable as exc:
            results = [_failed(r.key, exc) for r in records]
        self._record(name, spec, report, entries, meta, results, notes)

    def _park_orphan(self, name: str, item: OutboxItem, parent: tuple[str, str], report: RunReport) -> None:
        """A record whose parent has no remote record: wait if a run will deliver it, else a final skip."""
        sync, key = parent
        if self.store.outbox_prints(sync, [key]):
            why = f"waits for {sync} {key}, planned but not delivered yet"
            self.store.fail(item, report.run_id, why, max_attempts=1, kind="deferred")
            self.store.record_outcomes(report.run_id, name, [{"key": item.key, "outcome": "deferred", "error": why}])
            report.deferred += 1
            return
        why = "dead-lettered" if self.store.parked(sync, [key]) else "not in the source or not synced"
        reason = f"skipped: parent {sync} {key} not synced ({why})"
        self.store.skip(item, report.run_id, reason)
        self.store.record_outcomes(report.run_id, name, [{"key": item.key, "outcome": "skipped", "error": reason}])
        report.skipped += 1

    def _record(
        self,
        name: str,
        spec: SyncSpec,
        report: RunReport,
        entries: dict[str, Any],
        meta: list[tuple[OutboxItem, str, dict[str, Any]]],
        results: list[PushResult],
        notes: dict[str, dict[str, dict[str, str]]] | None = None,
    ) -> None:
        """Per-record outcomes: applied ones recorded as applied, whatever happened to the others.

        ``notes`` says per key which values were rounded on the way out (kept with the record).
        """
        notes = notes or {}
        by_key = {item.key: (item, op, sent) for item, op, sent in meta}
        delivered, counts = [], Counter[str]()
        outcomes: list[dict[str, Any]] = []
        for result in results:
            item, op, sent = by_key[result.key]
            trace = {"key": item.key, "request": result.request, "answer": result.answer}
            if result.error is not None:
                trace["error"] = str(result.error)
            if result.error is None:
                outcomes.append({**trace, "outcome": f"{op}d"})
                entry = entries.get(item.key)
                remote_id = result.remote_id or (entry.remote_id if entry else None)
                extra = {**(entry.extra if entry else {}), **result.extra}
                # What was rounded on the way out stays visible per record (`sync show`), until the next send.
                extra.pop("rounded", None)
                if notes.get(item.key):
                    extra["rounded"] = notes[item.key]
                    report.rounded += len(notes[item.key])
                delivered.append((item, remote_id, extra, sent))
                counts[f"done_{op}s"] += 1
                report.done[op] += 1
                continue
            error = result.error
            if isinstance(error, Retriable):
                self.store.fail(item, report.run_id, str(error), max_attempts=spec.max_attempts, kind="transient",
                                retry_in_s=next_attempt_in(item.retries + 1, error))  # fmt: skip
                outcomes.append({**trace, "outcome": "failed"})
                report.failed += 1
                continue
            if isinstance(error, Deferred):
                self.store.fail(item, report.run_id, str(error), max_attempts=spec.max_attempts, kind="deferred")
                outcomes.append({**trace, "outcome": "deferred"})
                report.deferred += 1
                continue
            dead = self.store.fail(item, report.run_id, str(error), max_attempts=spec.max_attempts)
            outcomes.append({**trace, "outcome": "dead_lettered" if dead else "failed"})
            report.failed += 1
            report.dead_lettered += int(dead)
        if delivered:
            self.store.complete_many(delivered, run_id=report.run_id, counts=dict(counts))
        # After the records' own state: an outcome row is a record of what happened, never a source of truth.
        self.store.record_outcomes(report.run_id, name, outcomes)


class _PlanLease:
    """The planning lease of one pass, renewed by the detector as it reads (``PassLease``)."""

    def __init__(self, store: StateStore, sync: str, worker: str, lease_s: float) -> None:
        self.store, self.sync, self.worker, self.lease_s = store, sync, worker, lease_s
        self.pass_id = uuid.uuid4().hex

    def renew(self) -> None:
        if not self.store.renew_plan(self.sync, self.worker, self.pass_id, self.lease_s):
            raise LeaseLost(f"the planning lease of {self.sync} was taken over by another worker")


def _ref_value(entry: Any, attr: str) -> Any:
    if entry is None:
        return None
    if attr == "id":
        return entry.remote_id
    # A remote extra (Shopify's inventory_item_id), else a value last sent for that record: an
    # invoice line takes the Xero item's code and unit price as the items sync delivered them.
    return entry.extra[attr] if attr in entry.extra else entry.sent.get(attr)


def _hold_text(destination: str, hold: tuple[Any, str]) -> str:
    until, reason = hold
    return f"paused until {until:%Y-%m-%d %H:%M} UTC: {reason}"


def matches(spec: SyncSpec, row: dict[str, Any] | None) -> bool:
    """Whether a row passes the sync's ``filter`` (values compared as text: ``true``, ``7``, ``complete``)."""
    if not spec.filter or row is None:
        return True
    for name, wanted in spec.filter.items():
        allowed = {_as_text(v) for v in (wanted if isinstance(wanted, list) else [wanted])}
        if _as_text(row.get(name)) not in allowed:
            return False
    return True


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _failed(key: str, exc: Exception) -> PushResult:
    return PushResult(key, error=exc)  # type: ignore[arg-type]


class _Paused(Exception):
    """Raised between batches when the sync was paused mid-run, or its plan is held for approval."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
