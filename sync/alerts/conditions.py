"""Each alert condition, evaluated from the state store alone (no legacy database, no destination).

Reading only the store means any process sharing it (a sync worker after a run, the
loop's tick, the gateway) judges the same way, and the compare-and-set in
``transition_alert`` decides which of them delivers a change.

- ``failing_runs``: ``after_failures`` failing (or partially failing) runs in a row; clear after a success.
- ``dlq_growth``: more than ``dlq_threshold`` dead letters; clear at or below it (replayed, or fixed).
- ``lag``: the last *successful* run of a sync with a ``latency_target_s`` started longer ago than
  the target: every change made before that start has reached the destination, a later one may
  not have. Clear once a successful run started within the target.
- ``count_deviation``: the newest full pass (snapshot detectors) read ``count_deviation`` more or
  fewer rows than the median of the last ``count_history`` completed runs (3 at least).
- ``reconnect_needed``: the destination's grant status says a human must reconnect it.
- ``awaiting_approval``: a run waits for ``sync approve`` / ``sync reject``.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from sync.alerts.config import AlertConfig, AlertKind
from sync.alerts.model import Condition
from sync.state.approvals import COMPLETED, PROCEEDED

if TYPE_CHECKING:
    from sync.config import SyncConfig, SyncSpec
    from sync.state.base import StateStore

__all__ = ("evaluate_conditions",)

_ERROR_CHARS = 300


def evaluate_conditions(
    config: SyncConfig, store: StateStore, now: dt.datetime, syncs: Sequence[str] | None = None
) -> list[Condition]:
    """The state every condition of ``syncs`` (every sync when None) should be in now.

    With every sync, alerts about syncs or destinations the mapping no longer defines are cleared.
    """
    alert = config.alert or AlertConfig()
    names = list(config.syncs) if syncs is None else [s for s in syncs if s in config.syncs]
    found: list[Condition] = []
    for name in names:
        spec = config.syncs[name]
        muted = set(spec.alert.mute) if spec.alert else set()
        for condition in _sync_conditions(name, spec, alert, store, now):
            if condition.kind in muted and condition.active:
                condition = Condition(kind=condition.kind, subject=name, sync=name, active=False,
                                      message=f"{name}: {condition.kind} is muted for this sync")  # fmt: skip
            found.append(condition)
    destinations = sorted({config.syncs[n].destination for n in names})
    found.extend(_grant_conditions(config, store, destinations))
    if syncs is None:
        found.extend(_orphans(config, store))
    return found


def _sync_conditions(
    name: str, spec: SyncSpec, alert: AlertConfig, store: StateStore, now: dt.datetime
) -> Iterator[Condition]:
    own = spec.alert
    yield _failing(name, store, own.after_failures if own and own.after_failures else alert.after_failures)
    dlq_threshold = own.dlq_threshold if own and own.dlq_threshold is not None else alert.dlq_threshold
    yield _dlq(name, store, dlq_threshold)
    if spec.latency_target_s is not None:
        yield _lag(name, store, spec.latency_target_s, now)
    deviation = own.count_deviation if own and own.count_deviation is not None else alert.count_deviation
    if deviation is not None:
        yield _count(name, store, deviation, alert.count_history)
    yield _approval(name, store)


def _failing(name: str, store: StateStore, after: int) -> Condition:
    streak = store.failure_streak(name)
    if streak < after:
        return Condition(kind="failing_runs", subject=name, sync=name, active=False, value=streak, threshold=after,
                         message=f"{name}: runs succeed again")  # fmt: skip
    last = store.runs(name, limit=1)
    run = last[0] if last else {}
    error = (run.get("error") or "")[:_ERROR_CHARS]
    details = {"consecutive_failures": streak, "run_id": run.get("id"), "status": run.get("status"), "error": error}
    return Condition(kind="failing_runs", subject=name, sync=name, active=True, value=streak, threshold=after,
                     details=details, message=f"{name}: {streak} failing runs in a row (last run #{run.get('id')} "
                     f"{run.get('status')}{': ' + error if error else ''})")  # fmt: skip


def _dlq(name: str, store: StateStore, threshold: int) -> Condition:
    count = store.dlq_count(name)
    active = count > threshold
    what = f"{count} dead-lettered record{'s' if count != 1 else ''}"
    message = f"{name}: {what} (alert above {threshold})" if active else f"{name}: {what}, at or below {threshold}"
    return Condition(kind="dlq_growth", subject=name, sync=name, active=active, value=count, threshold=threshold,
                     message=message)  # fmt: skip


def _lag(name: str, store: StateStore, target: float, now: dt.datetime) -> Condition:
    fresh = store.run_started(name, ("succeeded",))
    since = fresh or store.run_started(name, newest=False)
    if since is None:  # never ran: nothing is known to be late yet
        return Condition(kind="lag", subject=name, sync=name, active=False, threshold=target,
                         message=f"{name}: no run yet")  # fmt: skip
    lag = max(0.0, (now - since).total_seconds())
    details = {"last_success_started_at": fresh.isoformat() if fresh else None}
    if lag <= target:
        message = f"{name}: lag {lag:.0f} s, within the {target:g} s target"
        return Condition(kind="lag", subject=name, sync=name, active=False, value=round(lag, 1), threshold=target,
                         details=details, message=message)  # fmt: skip
    why = "last successful run started" if fresh else "no successful run since the first run, which started"
    paused = " (the sync is paused)" if store.is_paused(name) else ""
    message = f"{name}: {why} {lag:.0f} s ago, above the {target:g} s target{paused}"
    return Condition(kind="lag", subject=name, sync=name, active=True, value=round(lag, 1), threshold=target,
                     details=details, message=message)  # fmt: skip


def _count(name: str, store: StateStore, deviation: float, history: int) -> Condition:
    latest = store.recent_plans(name, (*PROCEEDED, "awaiting_approval"), 1)
    quiet = Condition(kind="count_deviation", subject=name, sync=name, active=False, threshold=deviation,
                      message=f"{name}: record count in line with recent runs")  # fmt: skip
    if not latest or latest[0]["source_rows"] is None:
        return quiet  # an incremental pass reads what changed, not the table: nothing to compare
    rows, run_id = latest[0]["source_rows"], latest[0]["run_id"]
    recent = [p["source_rows"] for p in store.recent_plans(name, COMPLETED, history + 1)
              if p["run_id"] < run_id and p["source_rows"] is not None][:history]  # fmt: skip
    if len(recent) < 3:
        return quiet
    usual = statistics.median(recent)
    share = abs(rows - usual) / usual if usual else (0.0 if rows == 0 else 1.0)
    if share <= deviation:
        return Condition(kind="count_deviation", subject=name, sync=name, active=False, value=round(share, 3),
                         threshold=deviation, message=f"{name}: run #{run_id} read {rows} rows, about as usual "
                         f"({usual:g})")  # fmt: skip
    direction = "more" if rows > usual else "fewer"
    return Condition(kind="count_deviation", subject=name, sync=name, active=True, value=round(share, 3),
                     threshold=deviation, details={"run_id": run_id, "source_rows": rows, "median": usual},
                     message=f"{name}: run #{run_id} read {rows} source rows, {share:.0%} {direction} than the "
                     f"median of {len(recent)} recent runs ({usual:g})")  # fmt: skip


def _approval(name: str, store: StateStore) -> Condition:
    run_id = store.awaiting_approval(name)
    if run_id is None:
        return Condition(kind="awaiting_approval", subject=name, sync=name, active=False,
                         message=f"{name}: no run waits for approval")  # fmt: skip
    reason = next((a["reason"] for a in store.approvals(name, waiting=True) if a["run_id"] == run_id), "")
    return Condition(kind="awaiting_approval", subject=name, sync=name, active=True, value=run_id,
                     details={"run_id": run_id, "status": "awaiting_approval", "error": reason},
                     message=f"{name}: run #{run_id} waits for approval ({reason})")  # fmt: skip


def _grant_conditions(config: SyncConfig, store: StateStore, destinations: Sequence[str]) -> Iterator[Condition]:
    grants = store.grants()
    for destination in destinations:
        users = [n for n, s in config.syncs.items() if s.destination == destination]
        grant = grants.get(destination)
        if grant is None or grant["status"] != "reconnect_needed":
            yield Condition(kind="reconnect_needed", subject=destination, destination=destination, sync=users[0],
                            active=False, message=f"{destination}: connected")  # fmt: skip
            continue
        reason = f" ({grant['reason']})" if grant["reason"] else ""
        yield Condition(kind="reconnect_needed", subject=destination, destination=destination, sync=users[0],
                        active=True, details={"syncs": users, "reason": grant["reason"]},
                        message=f"{destination}: must be reconnected{reason}; {', '.join(users)} cannot send until "
                        "then")  # fmt: skip


def _orphans(config: SyncConfig, store: StateStore) -> Iterator[Condition]:
    """Active alerts about a sync or destination the mapping no longer has: nobody will clear them otherwise."""
    for row in store.alert_states():
        kind: AlertKind = row["kind"]
        known = config.destinations if kind == "reconnect_needed" else config.syncs
        if row["active"] and row["subject"] not in known:
            yield Condition(kind=kind, subject=row["subject"], sync=row["sync"], destination=row["destination"],
                            active=False, message=f"{row['subject']}: no longer in the mapping")  # fmt: skip
