"""The StateStore protocol: everything the sync engine, its detectors and the CLI keep between runs (STYLE C5).

Two implementations: ``SyncStore`` (SQLAlchemy Core over a SQLite file or
PostgreSQL, ``sync/state/sync_store.py``) and ``MemoryStore``
(``sync/state/memory.py``, one process, gone on exit). ``tests/contracts/test_state_store.py``
runs the same tests on both (and on PostgreSQL), so what is written here is
what every store must do. Keys are a sync's legacy key as JSON text
(``encode_key``); rows and cursors are JSON-able values.

What a store promises, beyond the signatures:

- a delivered record leaves the outbox in the same step that stores its
  fingerprint and remote id (``complete_many``), unless it was re-planned with a
  newer fingerprint meanwhile, in which case the newer plan stays;
- ``claim`` hands concurrent workers disjoint records; a lease that expires
  (the worker died) makes its records claimable again;
- a record that failed in run N is not claimed again before run N + 1; only a
  refusal by the destination spends an attempt, and after ``max_attempts`` of
  them it is in the DLQ, not the outbox; a transient failure never dead-letters
  and is not claimed before its ``next_attempt_at``;
- a snapshot pass's ``seen`` set belongs to that pass alone (``snapshot_pass``: no other
  pass reads or clears it, and it does not outlive the pass or its process), and a pass
  can renew its planning lease only while nobody else took it;
- the rate budget of a destination is one for every worker sharing the store;
- run history is a state machine (``sync.state.runs.TRANSITIONS``): an invalid
  move raises ``InvalidTransition``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sync.state.alerts import GrantStatus
    from sync.state.runs import FailureKind

__all__ = ("IdEntry", "OutboxItem", "SnapshotPass", "StateStore")


@dataclass(frozen=True, slots=True)
class IdEntry:
    """What the id map holds for one legacy key."""

    remote_id: str
    extra: dict[str, Any]
    """Connector extras (``inventory_item_id`` of a product) that other syncs ``ref``."""
    sent: dict[str, Any]
    """The destination values we last sent: sample diffs and ``newest`` ownership."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One planned record, as claimed by a worker."""

    id: int
    sync: str
    key: str
    op: str
    row: dict[str, Any] | None
    fingerprint: str | None
    changed_at: dt.datetime | None
    attempts: int
    """Refusals spent (a refused record dead-letters at ``max_attempts``)."""
    retries: int = 0
    """Transient failures so far: they back off, never dead-letter."""
    claims: int = 1
    """Claims not settled by a known outcome (refusal), this one included: above 1, an earlier attempt
    may have reached the destination (its worker died, or it timed out)."""
    planned_fingerprint: str | None = None
    refreshed: bool = False
    """The engine re-read the row before sending: ``row``/``fingerprint`` are the row as it is now,
    ``planned_fingerprint`` the one the outbox record was planned with."""

    @property
    def outbox_fingerprint(self) -> str | None:
        """What the outbox record holds, unless re-planned since: tells "still ours" from "re-planned"."""
        return self.planned_fingerprint if self.refreshed else self.fingerprint


class SnapshotPass(Protocol):
    """The keys one snapshot pass saw, compared with the stored fingerprints a batch at a time.

    Deletes are the fingerprinted keys the pass did not see, so the set must hold every key
    read (with or without a fingerprint: a row delivered while the pass runs gets one) and
    belong to this pass only. Keys compare exactly (case, trailing spaces, any character).
    """

    def see(self, prints: Sequence[tuple[str, str]]) -> list[int]:
        """Add the ``(key, fingerprint)`` pairs' keys to the seen set; the positions in ``prints``, in
        order, of the pairs whose fingerprint differs from the stored one (or has none stored)."""
        ...

    def unseen(self, batch_size: int = 5000) -> Iterator[list[str]]:
        """Fingerprinted keys of the sync that were not seen (deleted at the source), in batches."""
        ...

    def close(self) -> None:
        """Drop the seen set (idempotent)."""
        ...

    def __enter__(self) -> SnapshotPass: ...

    def __exit__(self, *exc: object) -> None: ...


class StateStore(Protocol):
    """Durable (or, in memory, per-process) sync state; safe to share between threads."""

    # -- controls: pause and the planning lease --------------------------------------------

    def set_paused(self, sync: str, paused: bool) -> None: ...

    def is_paused(self, sync: str) -> bool: ...

    def acquire_plan(self, sync: str, worker: str, lease_s: float, pass_id: str | None = None) -> bool:
        """Take the right to detect changes for ``sync`` unless another live worker holds it."""
        ...

    def renew_plan(self, sync: str, worker: str, pass_id: str, lease_s: float) -> bool:
        """Extend pass ``pass_id``'s lease; False once another worker took it, even if it has let go since."""
        ...

    def release_plan(self, sync: str, worker: str) -> None: ...

    def plan_held(self, sync: str) -> bool:
        """A worker holds an unexpired planning lease for ``sync``."""
        ...

    # -- cursors, fingerprints, the snapshot's scratch set ---------------------------------

    def get_cursor(self, sync: str) -> Any:
        """The detector's cursor as last committed, None before the first commit."""
        ...

    def set_cursor(self, sync: str, cursor: Any) -> None: ...

    def fingerprints(self, sync: str, keys: Sequence[str]) -> dict[str, str]:
        """Fingerprints of the rows as last delivered (or accepted), for the keys that have one."""
        ...

    def snapshot_pass(self, sync: str) -> SnapshotPass:
        """A snapshot pass's scratch set of the keys it saw (close it when the pass ends, whichever way)."""
        ...

    def forget(self, sync: str, keys: Sequence[str]) -> None:
        """Drop fingerprints (deletes the mode ignores, so they are not reported again)."""
        ...

    def accept(self, sync: str, prints: dict[str, str]) -> None:
        """Store fingerprints without delivering (changes the mode chose not to send)."""
        ...

    # -- id map ----------------------------------------------------------------------------

    def id_entries(self, sync: str, keys: Sequence[str]) -> dict[str, IdEntry]: ...

    def id_count(self, sync: str) -> int: ...

    # -- outbox ----------------------------------------------------------------------------

    def enqueue(self, sync: str, items: Sequence[dict[str, Any]]) -> None:
        """Plan records (``key, op, row, fingerprint, changed_at``); a re-plan keeps spent attempts."""
        ...

    def outbox_prints(self, sync: str, keys: Sequence[str]) -> dict[str, str | None]: ...

    def pending(self, sync: str) -> int: ...

    def oldest_pending_at(self, sync: str) -> dt.datetime | None:
        """When the longest-waiting outbox record was first planned; None when none is (known)."""
        ...

    def run_totals(self, sync: str) -> dict[str, Any]:
        """``{runs: {status: n}, sent, failed, dead_lettered}`` over the recorded runs (dry runs aside)."""
        ...

    def budgets(self) -> list[dict[str, Any]]:
        """Every destination rate budget: ``bucket, maximum, available, restore_rate, at`` (epoch s)."""
        ...

    def claim(self, sync: str, worker: str, run_id: int, limit: int, lease_s: float) -> list[OutboxItem]:
        """Lease up to ``limit`` free records, oldest first; concurrent workers get disjoint sets."""
        ...

    def release(self, worker: str) -> None:
        """Give back every lease ``worker`` holds."""
        ...

    def complete(
        self, item: OutboxItem, remote_id: str | None, extra: dict[str, Any], sent: dict[str, Any]
    ) -> None: ...

    def complete_many(
        self,
        done: Sequence[tuple[OutboxItem, str | None, dict[str, Any], dict[str, Any]]],
        *,
        run_id: int | None = None,
        counts: dict[str, int] | None = None,
    ) -> None:
        """Delivered records: out of the outbox, fingerprint and id map updated (or removed for deletes).

        ``counts`` are added to run ``run_id`` in the same step.
        """
        ...

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
        """Record a failed attempt; True when the record went to the dead-letter queue (refusals only)."""
        ...

    def drop(self, item: OutboxItem) -> None:
        """Out of the outbox without a write (source row gone, or equal to what was delivered)."""
        ...

    def skip(self, item: OutboxItem, run_id: int, reason: str) -> None:
        """A final outcome without a write, kept with its fingerprint and counted in run ``run_id``."""
        ...

    def skipped(self, sync: str, keys: Sequence[str]) -> dict[str, str | None]:
        """Skipped keys with the fingerprint they were skipped with."""
        ...

    def skipped_records(self, sync: str | None = None) -> list[dict[str, Any]]: ...

    # -- the destination's rate budget, shared by every worker ------------------------------

    def take_budget(self, bucket: str, cost: float, *, maximum: float, restore_rate: float, now: float) -> float:
        """Take ``cost`` points (0.0), or say how many seconds until they are there (nothing taken)."""
        ...

    def observe_budget(self, bucket: str, *, maximum: float, available: float, restore_rate: float, now: float) -> None:
        """Correct the shared estimate with the destination's own ``throttleStatus``."""
        ...

    # -- destination holds (a spent quota) and API usage per account and day -----------------

    def hold_destination(self, destination: str, until: dt.datetime, reason: str) -> None:
        """No sync writes to ``destination`` before ``until`` (UTC)."""
        ...

    def destination_hold(self, destination: str, now: dt.datetime | None = None) -> tuple[dt.datetime, str] | None:
        """(until, reason) while held, else None."""
        ...

    def add_usage(self, account: str, day: str, *, calls: int, bytes_in: int, bytes_out: int) -> None: ...

    def usage(self, days: int = 7) -> list[dict[str, Any]]:
        """Rows {account, day, calls, bytes_in, bytes_out} of the last ``days`` UTC days, newest first."""
        ...

    # -- runs, errors, conflicts, DLQ --------------------------------------------------------

    def start_run(self, sync: str, worker: str, *, dry_run: bool = False) -> int: ...

    def move_run(self, run_id: int, status: str, *, error: str | None = None) -> None: ...

    def add_counts(self, run_id: int, **counts: int) -> None: ...

    def runs(self, sync: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Newest first, each with the columns of ``sync_runs``."""
        ...

    def abandon_stale_runs(self, sync: str, grace_s: float) -> list[int]:
        """Mark unfinished runs of ``sync`` ``abandoned`` when their worker holds no live lease; their ids.

        A run younger than ``grace_s`` is presumed alive (it may be waiting for another
        worker's plan without holding anything yet).
        """
        ...

    def note_outcome(self, sync: str, failing: bool) -> int:
        """The count of consecutive failing runs after this one (0 after a success)."""
        ...

    def record_errors(self, run_id: int) -> list[dict[str, Any]]: ...

    def record_conflict(
        self, run_id: int, sync: str, key: str, field: str, legacy: Any, remote: Any, winner: str
    ) -> None: ...

    def conflicts(
        self, sync: str | None = None, *, run_id: int | None = None, key: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Recorded conflicts, oldest first, filtered by sync, run and encoded legacy key."""
        ...

    def errors(
        self, sync: str | None = None, *, run_id: int | None = None, key: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Per-record errors, oldest first, filtered by sync, run and encoded legacy key."""
        ...

    def dlq(self, sync: str | None = None) -> list[dict[str, Any]]: ...

    def parked(self, sync: str, keys: Sequence[str]) -> dict[str, str | None]:
        """Dead-lettered keys with the fingerprint they failed with."""
        ...

    def replay(self, sync: str | None = None, ids: Sequence[int] | None = None) -> int:
        """Dead letters back to the outbox with a fresh attempt budget; how many."""
        ...

    def discard(self, sync: str | None = None, ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Dead letters given up on: out of the DLQ, their row accepted as it is (planned again once it
        changes); the letters as they were."""
        ...

    # -- row-level outcomes (sync/state/outcomes.py) ------------------------------------------

    def record_outcomes(self, run_id: int, sync: str, outcomes: Sequence[dict[str, Any]]) -> None:
        """Each ``{key, outcome, request?, answer?, error?}`` of a run; payloads are stored redacted."""
        ...

    def outcomes(
        self, run_id: int, *, key: str | None = None, outcome: str | None = None, limit: int = 100, after_id: int = 0
    ) -> list[dict[str, Any]]:
        """A run's outcomes in recorded order; ``key`` matches part of the encoded legacy key."""
        ...

    def prune_outcomes(self, older_than: dt.datetime) -> int:
        """Drop outcomes recorded before ``older_than`` (the retention of ``sync.outcome_retention_days``)."""
        ...

    # -- the approval gate (sync/state/approvals.py) -----------------------------------------

    def record_plan(self, run_id: int, sync: str, source_rows: int | None, spec_hash: str) -> None:
        """What a run planned from: rows a full pass read (None if incremental) and the definition's hash."""
        ...

    def recent_plans(self, sync: str, statuses: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
        """``run_id, source_rows, spec_hash`` of the latest runs that ended in ``statuses``, newest first."""
        ...

    def request_approval(self, run_id: int, sync: str, reason: str, plan: dict[str, Any]) -> None: ...

    def awaiting_approval(self, sync: str) -> int | None:
        """The run of ``sync`` waiting for a human decision; while there is one, the sync sends nothing."""
        ...

    def approvals(self, sync: str | None = None, *, waiting: bool = False) -> list[dict[str, Any]]: ...

    def decide_approval(self, run_id: int, decision: str, by: str) -> dict[str, Any]:
        """Record approved/rejected and who decided, once; raises ``NotAwaitingApproval`` otherwise."""
        ...

    def discard_plan(self, sync: str) -> int:
        """Drop the sync's outbox and detector cursor (a rejected plan); the next pass plans from the source."""
        ...

    # -- alerts and grant status (sync/state/alerts.py, evaluated by sync/alerts) ----------------

    def alert_states(self) -> list[dict[str, Any]]:
        """Every (kind, subject) ever raised, active or not, with its message, value and ``since``."""
        ...

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
        """Set (kind, subject) to ``active``; the event id if this call changed it (once among all workers)."""
        ...

    def record_delivery(self, event_id: int, outcome: str) -> None: ...

    def alert_events(self, limit: int = 100, *, subject: str | None = None) -> list[dict[str, Any]]:
        """Raised/cleared events, newest first, with what their delivery did."""
        ...

    def failure_streak(self, sync: str) -> int: ...

    def dlq_count(self, sync: str) -> int: ...

    def run_started(
        self, sync: str, statuses: Sequence[str] | None = None, *, newest: bool = True
    ) -> dt.datetime | None:
        """Start of the newest (or oldest) non-dry run of ``sync`` in ``statuses`` (any when None)."""
        ...

    def set_grant(self, destination: str, status: GrantStatus, reason: str = "") -> None:
        """Whether ``destination``'s authorisation works (``ok``) or a human must reconnect it."""
        ...

    def grants(self) -> dict[str, dict[str, Any]]: ...
