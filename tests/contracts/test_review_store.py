"""The state store's review surface (issue 12, items 11 and 12) on SQLite, in memory and on PostgreSQL:
filtered error and conflict listings, run plans, and the approval lifecycle."""

from __future__ import annotations

import pytest

from sync.state.approvals import COMPLETED, PROCEEDED, NotAwaitingApproval
from sync.state.base import StateStore
from tests.contracts.test_state_store import plan


def test_errors_and_conflicts_filter_by_sync_run_and_key(state_store: StateStore) -> None:
    plan(state_store, "a", "b")
    first, second = state_store.claim("s", "w", run_id=1, limit=10, lease_s=60)
    state_store.fail(first, 1, "INVALID: price", max_attempts=5)
    state_store.fail(second, 1, "TAKEN: email", max_attempts=5)
    state_store.record_conflict(1, "s", "a", "email", "old@x", "new@x", "destination")
    state_store.record_conflict(2, "t", "a", "email", "o@x", "n@x", "legacy")
    assert [e["error"] for e in state_store.errors("s", key="b")] == ["TAKEN: email"]
    assert len(state_store.errors(run_id=1)) == 2 and state_store.errors(run_id=2) == []
    assert len(state_store.errors("s", limit=1)) == 1
    assert [c["sync"] for c in state_store.conflicts(key="a")] == ["s", "t"]
    assert [c["winner"] for c in state_store.conflicts(run_id=2)] == ["legacy"]
    assert state_store.conflicts("s", key="b") == []


def test_an_approval_is_decided_once_and_holds_the_sync_until_then(state_store: StateStore) -> None:
    run = state_store.start_run("s", "w")
    state_store.move_run(run, "running")
    state_store.record_plan(run, "s", 200, "h1")
    state_store.request_approval(run, "s", "would delete 25 of 200", {"planned": {"delete": 25}, "samples": []})
    state_store.move_run(run, "awaiting_approval")
    assert state_store.awaiting_approval("s") == run and state_store.awaiting_approval("t") is None
    (waiting,) = state_store.approvals(waiting=True)
    assert (waiting["reason"], waiting["plan"]["planned"]) == ("would delete 25 of 200", {"delete": 25})
    decided = state_store.decide_approval(run, "approved", "alice")
    assert (decided["decision"], decided["decided_by"], decided["sync"]) == ("approved", "alice", "s")
    with pytest.raises(NotAwaitingApproval):
        state_store.decide_approval(run, "rejected", "bob")
    assert state_store.awaiting_approval("s") is None and state_store.approvals("s", waiting=True) == []
    state_store.move_run(run, "running")
    state_store.move_run(run, "succeeded")
    assert state_store.recent_plans("s", COMPLETED, 5) == [{"run_id": run, "source_rows": 200, "spec_hash": "h1"}]


def test_recent_plans_follow_how_their_runs_ended_and_a_discarded_plan_is_gone(state_store: StateStore) -> None:
    runs = []
    for status, rows in (("succeeded", 10), ("failed", 11), ("cancelled", 12)):
        run = state_store.start_run("s", "w")
        state_store.move_run(run, "running")
        state_store.record_plan(run, "s", rows, f"h{rows}")
        state_store.move_run(run, status)
        runs.append(run)
    assert [p["source_rows"] for p in state_store.recent_plans("s", PROCEEDED, 5)] == [11, 10]
    assert [p["source_rows"] for p in state_store.recent_plans("s", COMPLETED, 5)] == [10]
    plan(state_store, "a", "b")
    state_store.set_cursor("s", {"version": 7})
    assert state_store.discard_plan("s") == 2
    assert state_store.pending("s") == 0 and state_store.get_cursor("s") is None
