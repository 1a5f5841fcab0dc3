"""The StateStore contract (sync/state/base.py), run on SQLite, in memory and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from sync.state.base import OutboxItem, StateStore
from sync.state.runs import InvalidTransition


def plan(store: StateStore, *keys: str, op: str = "upsert", fp: str = "f1") -> None:
    store.enqueue("s", [{"key": k, "op": op, "row": {"k": k, "n": 1}, "fingerprint": fp} for k in keys])


def deliver(store: StateStore, items: list[OutboxItem], remote: str = "gid://1") -> None:
    store.complete_many([(i, f"{remote}/{i.key}", {"inv": i.key}, {"title": i.key}) for i in items])


def test_cursor_round_trips_as_json_and_is_per_sync(state_store: StateStore) -> None:
    assert state_store.get_cursor("s") is None
    cursor: dict[str, Any] = {"version": 41, "mark": "2026-01-15T09:00:00+00:00"}
    state_store.set_cursor("s", cursor)
    cursor["version"] = 99  # the caller's dict is not the stored one
    state_store.set_cursor("t", {"version": 1})
    assert state_store.get_cursor("s") == {"version": 41, "mark": "2026-01-15T09:00:00+00:00"}
    state_store.set_cursor("s", {"version": 42})
    assert state_store.get_cursor("s") == {"version": 42}


def test_unseen_fingerprinted_keys_are_the_deletes(state_store: StateStore) -> None:
    state_store.accept("s", {'["a"]': "1", '["b"]': "2", '["c"]': "3"})
    state_store.accept("other", {'["z"]': "9"})
    with state_store.snapshot_pass("s") as seen:
        # Duplicates and keys without a fingerprint are fine; a changed or new row is reported by position.
        assert seen.see([('["a"]', "1"), ('["a"]', "1"), ('["x"]', "7"), ('["c"]', "changed")]) == [2, 3]
        assert seen.see([]) == []
        assert [k for batch in seen.unseen(batch_size=1) for k in batch] == ['["b"]']
    assert state_store.fingerprints("s", ['["a"]', '["x"]']) == {'["a"]': "1"}
    state_store.forget("s", ['["b"]'])
    with state_store.snapshot_pass("s") as seen:
        assert sorted(k for batch in seen.unseen() for k in batch) == ['["a"]', '["c"]']


def test_batches_larger_than_one_statement_compare_and_store_every_pair(state_store: StateStore) -> None:
    """SQLite binds a batch in slices of a few hundred rows: positions and upserts hold across the slices."""
    keys = [f'["k{n:05}"]' for n in range(1203)]
    state_store.accept("s", {k: "old" for k in keys[::2]})
    state_store.accept("s", {k: "new" for k in keys[::4]})  # updates half of what is there, across slices
    expected = {k: "new" if n % 4 == 0 else "old" for n, k in enumerate(keys) if n % 2 == 0}
    assert state_store.fingerprints("s", keys) == expected
    pairs = [(k, "new") for k in keys]
    with state_store.snapshot_pass("s") as seen:
        assert seen.see(pairs) == [n for n in range(len(keys)) if n % 4 != 0]
        assert seen.see(pairs[::-1]) == [n for n in range(len(keys)) if (len(keys) - 1 - n) % 4 != 0]
        assert [k for batch in seen.unseen() for k in batch] == []
    with state_store.snapshot_pass("s") as seen:
        assert seen.see(pairs[401:]) == [n - 401 for n in range(401, len(keys)) if n % 4 != 0]
        assert [k for batch in seen.unseen(batch_size=50) for k in batch] == [k for k in keys[:401:2]]


def test_a_fingerprint_stored_during_the_pass_is_compared_and_seen(state_store: StateStore) -> None:
    """Deliveries land while a pass runs: its next batch compares with them, and a key it saw stays seen."""
    with state_store.snapshot_pass("s") as seen:
        assert seen.see([('["a"]', "1")]) == [0]
        state_store.accept("s", {'["a"]': "1", '["b"]': "2"})
        assert seen.see([('["b"]', "2")]) == []
        assert [k for batch in seen.unseen() for k in batch] == []


def test_seen_sets_belong_to_their_pass(state_store: StateStore) -> None:
    state_store.accept("s", {'["a"]': "1", '["b"]': "2"})
    old = state_store.snapshot_pass("s")
    old.see([('["a"]', "1")])
    with state_store.snapshot_pass("s") as new:  # an overlapping pass starts and finishes meanwhile
        assert new.see([('["a"]', "1"), ('["b"]', "2")]) == []
        assert [k for batch in new.unseen() for k in batch] == []
    assert [k for batch in old.unseen() for k in batch] == ['["b"]']
    old.close()
    old.close()  # closing twice is harmless
    with state_store.snapshot_pass("s") as fresh:  # starts empty whatever passes came before
        assert sorted(k for batch in fresh.unseen() for k in batch) == ['["a"]', '["b"]']
    with pytest.raises(RuntimeError):
        old.see([('["a"]', "1")])


def test_a_lapsed_pass_cannot_renew_once_another_took_the_lease(state_store: StateStore) -> None:
    assert state_store.acquire_plan("s", "w1", lease_s=0.05, pass_id="p1")
    assert state_store.renew_plan("s", "w1", "p1", lease_s=0.05)
    time.sleep(0.1)
    assert state_store.acquire_plan("s", "w2", lease_s=60, pass_id="p2")
    assert not state_store.renew_plan("s", "w1", "p1", lease_s=60)
    state_store.release_plan("s", "w2")
    assert not state_store.renew_plan("s", "w1", "p1", lease_s=60), "released since: still not p1's"
    assert state_store.acquire_plan("s", "w1", lease_s=60, pass_id="p3")
    assert not state_store.renew_plan("s", "w1", "p1", lease_s=60), "the same worker's older pass"
    assert state_store.renew_plan("s", "w1", "p3", lease_s=60)


def test_delivery_leaves_the_outbox_and_records_fingerprint_and_remote_id(state_store: StateStore) -> None:
    plan(state_store, "a", "b")
    assert state_store.pending("s") == 2 and state_store.outbox_prints("s", ["a", "zz"]) == {"a": "f1"}
    items = state_store.claim("s", "w1", run_id=1, limit=10, lease_s=60)
    assert [(i.key, i.op, i.row, i.attempts) for i in items] == [
        ("a", "upsert", {"k": "a", "n": 1}, 0),
        ("b", "upsert", {"k": "b", "n": 1}, 0),
    ]
    deliver(state_store, items)
    assert state_store.pending("s") == 0
    assert state_store.fingerprints("s", ["a", "b"]) == {"a": "f1", "b": "f1"}
    entry = state_store.id_entries("s", ["a"])["a"]
    assert (entry.remote_id, entry.extra, entry.sent) == ("gid://1/a", {"inv": "a"}, {"title": "a"})
    assert state_store.id_count("s") == 2


def test_a_record_replanned_while_pushed_stays_for_the_next_claim(state_store: StateStore) -> None:
    plan(state_store, "a")
    (item,) = state_store.claim("s", "w1", 1, 10, 60)
    plan(state_store, "a", fp="f2")  # the row changed again while w1 was pushing
    deliver(state_store, [item])
    assert state_store.pending("s") == 1
    (again,) = state_store.claim("s", "w2", 1, 10, 60)
    assert again.fingerprint == "f2"


def test_concurrent_claims_are_disjoint_and_expired_leases_come_back(state_store: StateStore) -> None:
    plan(state_store, *"abcde")
    first = state_store.claim("s", "w1", 1, 3, lease_s=0.3)
    second = state_store.claim("s", "w2", 1, 10, lease_s=60)
    assert {i.key for i in first} == {"a", "b", "c"} and {i.key for i in second} == {"d", "e"}
    assert state_store.claim("s", "w3", 1, 10, 60) == []
    time.sleep(0.35)  # w1 died: its leases expire
    assert {i.key for i in state_store.claim("s", "w3", 1, 10, 60)} == {"a", "b", "c"}
    state_store.release("w2")
    assert {i.key for i in state_store.claim("s", "w4", 1, 10, 60)} == {"d", "e"}


def test_failure_waits_for_the_next_run_then_dead_letters_after_the_budget(state_store: StateStore) -> None:
    plan(state_store, "a")
    (item,) = state_store.claim("s", "w", 1, 10, 60)
    assert state_store.fail(item, 1, "INVALID: price", max_attempts=2) is False
    assert state_store.claim("s", "w", 1, 10, 60) == [], "retried in the run it failed in"
    (item,) = state_store.claim("s", "w", 2, 10, 60)
    assert item.attempts == 1
    plan(state_store, "a")  # re-planned: spent attempts are kept, or a poison row would loop forever
    assert state_store.claim("s", "w2", 2, 10, 60) == [], "a re-plan must not drop the pusher's lease"
    state_store.release("w")
    (item,) = state_store.claim("s", "w", 3, 10, 60)
    assert item.attempts == 1
    assert state_store.fail(item, 3, "INVALID: price again", max_attempts=2) is True
    assert state_store.pending("s") == 0
    (letter,) = state_store.dlq("s")
    assert (letter["key"], letter["attempts"], letter["last_error"]) == ("a", 2, "INVALID: price again")
    assert state_store.parked("s", ["a", "b"]) == {"a": "f1"}
    assert [e["error"] for e in state_store.record_errors(3)] == ["INVALID: price again"]


def test_deferred_failures_spend_no_attempt(state_store: StateStore) -> None:
    plan(state_store, "a")
    (item,) = state_store.claim("s", "w", 1, 10, 60)
    assert state_store.fail(item, 1, "waits on its product", max_attempts=1, kind="deferred") is False
    (item,) = state_store.claim("s", "w", 2, 10, 60)
    assert item.attempts == 0


def test_transient_failures_back_off_and_never_dead_letter(state_store: StateStore) -> None:
    plan(state_store, "a")
    for run in range(1, 6):  # far past max_attempts
        (item,) = state_store.claim("s", "w", run * 2, 10, 60)
        assert state_store.fail(item, run * 2, "HTTP 503", max_attempts=1, kind="transient", retry_in_s=0.15) is False
        assert state_store.claim("s", "w", run * 2 + 1, 10, 60) == [], "claimed again before its backoff ended"
        time.sleep(0.2)
    (item,) = state_store.claim("s", "w", 20, 10, 60)
    assert (item.attempts, item.retries) == (0, 5) and state_store.dlq("s") == []
    plan(state_store, "a", fp="f2")  # a new version of the row keeps the backoff count
    state_store.release("w")
    (item,) = state_store.claim("s", "w", 21, 10, 60)
    assert (item.fingerprint, item.retries) == ("f2", 5)


def test_drop_and_skip_leave_the_outbox_without_a_delivery(state_store: StateStore) -> None:
    plan(state_store, "a", "b")
    run = state_store.start_run("s", "w")
    a, b = state_store.claim("s", "w", run, 10, 60)
    state_store.drop(a)
    state_store.skip(b, run, 'skipped: parent items ["X"] not synced')
    assert state_store.pending("s") == 0 and state_store.fingerprints("s", ["a", "b"]) == {}
    assert state_store.skipped("s", ["a", "b"]) == {"b": "f1"}
    assert state_store.runs("s")[0]["skipped"] == 1
    (record,) = state_store.skipped_records("s")
    assert record["reason"].startswith("skipped: parent") and record["run_id"] == run
    plan(state_store, "b")
    deliver(state_store, state_store.claim("s", "w", run, 10, 60))
    assert state_store.skipped("s", ["b"]) == {}, "a delivery ends the skip"


def test_delivered_counts_are_added_with_the_delivery(state_store: StateStore) -> None:
    run = state_store.start_run("s", "w")
    plan(state_store, "a", "b")
    items = state_store.claim("s", "w", run, 10, 60)
    state_store.complete_many([(i, "gid://x/" + i.key, {}, {}) for i in items], run_id=run,
                              counts={"done_creates": 2})  # fmt: skip
    assert state_store.runs("s")[0]["done_creates"] == 2


def test_the_rate_budget_is_one_bucket_for_every_caller(state_store: StateStore) -> None:
    take = state_store.take_budget
    assert take("shop", 600, maximum=1000, restore_rate=100, now=0.0) == 0.0
    assert take("shop", 600, maximum=1000, restore_rate=100, now=0.0) == pytest.approx(2.0)  # 400 left
    assert take("shop", 600, maximum=1000, restore_rate=100, now=2.0) == 0.0
    state_store.observe_budget("shop", maximum=300, available=50, restore_rate=10, now=2.0)  # the shop knows better
    assert take("shop", 100, maximum=1000, restore_rate=100, now=2.0) == pytest.approx(5.0)
    state_store.observe_budget("shop", maximum=300, available=300, restore_rate=10, now=2.0)
    assert take("shop", 100, maximum=1000, restore_rate=100, now=2.0) > 0, "raised above what was paid for"
    assert take("other", 100, maximum=1000, restore_rate=100, now=2.0) == 0.0


def test_replay_moves_dead_letters_back_with_a_fresh_budget(state_store: StateStore) -> None:
    plan(state_store, "a", "b")
    for item in state_store.claim("s", "w", 1, 10, 60):
        state_store.fail(item, 1, "boom", max_attempts=1)
    letters = state_store.dlq("s")
    assert len(letters) == 2
    assert state_store.replay("s", ids=[letters[0]["id"]]) == 1
    (item,) = state_store.claim("s", "w", 1, 10, 60)
    assert (item.key, item.attempts, item.row) == (letters[0]["key"], 0, {"k": letters[0]["key"], "n": 1})
    deliver(state_store, [item])
    assert [d["key"] for d in state_store.dlq()] == [letters[1]["key"]]


def test_discarding_a_dead_letter_accepts_its_row_as_it_is(state_store: StateStore) -> None:
    plan(state_store, "a", "b", fp="bad")
    for item in state_store.claim("s", "w", 1, 10, 60):
        state_store.fail(item, 1, "refused", max_attempts=1)
    first, _second = state_store.dlq("s")
    (gone,) = state_store.discard("s", [first["id"]])
    assert (gone["key"], gone["last_error"]) == ("a", "refused")
    assert [d["key"] for d in state_store.dlq()] == ["b"]
    assert state_store.fingerprints("s", ["a", "b"]) == {"a": "bad"}  # not planned again until it changes
    assert state_store.discard("s", [first["id"]]) == []
    assert state_store.discard("other") == [] and len(state_store.dlq()) == 1


def test_outcomes_are_kept_per_run_searchable_by_key_and_pruned(state_store: StateStore) -> None:
    state_store.record_outcomes(7, "s", [
        {"key": '["C0042"]', "outcome": "created", "request": {"input": {"email": "a@b.c"}, "token": "t0ps3cret"},
         "answer": {"customer": {"id": "gid://1"}, "headers": {"Authorization": "Bearer x"}}},
        {"key": '["C0043"]', "outcome": "failed", "error": "Email is invalid"},
    ])  # fmt: skip
    state_store.record_outcomes(8, "s", [{"key": '["C0042"]', "outcome": "updated"}])
    found = state_store.outcomes(7)
    assert [(o["key"], o["outcome"]) for o in found] == [('["C0042"]', "created"), ('["C0043"]', "failed")]
    assert found[0]["request"] == {"input": {"email": "a@b.c"}, "token": "[redacted]"}
    assert found[0]["answer"]["headers"] == {"Authorization": "[redacted]"}
    assert [o["key"] for o in state_store.outcomes(7, key="0043")] == ['["C0043"]']
    assert [o["key"] for o in state_store.outcomes(7, key="%")] == []  # a wildcard is text, not a pattern
    assert [o["outcome"] for o in state_store.outcomes(7, outcome="failed")] == ["failed"]
    assert len(state_store.outcomes(7, limit=1, after_id=found[0]["id"])) == 1
    assert state_store.prune_outcomes(found[0]["at"] - dt.timedelta(seconds=1)) == 0
    assert state_store.prune_outcomes(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == 3
    assert state_store.outcomes(7) == []


def test_a_delivered_delete_forgets_the_fingerprint_and_the_remote_id(state_store: StateStore) -> None:
    plan(state_store, "a")
    deliver(state_store, state_store.claim("s", "w", 1, 10, 60))
    plan(state_store, "a", op="delete", fp="")
    (item,) = state_store.claim("s", "w", 1, 10, 60)
    assert item.op == "delete"
    state_store.complete(item, None, {}, {})
    assert state_store.id_entries("s", ["a"]) == {} and state_store.fingerprints("s", ["a"]) == {}


def test_run_history_is_a_state_machine_with_counts(state_store: StateStore) -> None:
    run = state_store.start_run("s", "w")
    assert state_store.runs("s")[0]["status"] == "queued"
    state_store.move_run(run, "running")
    state_store.add_counts(run, planned_creates=3, done_creates=2, failed=1)
    state_store.add_counts(run, done_creates=1)
    state_store.move_run(run, "partially_failed", error="1 record failed")
    latest = state_store.runs("s")[0]
    assert (latest["status"], latest["planned_creates"], latest["done_creates"], latest["failed"]) == (
        "partially_failed", 3, 3, 1,
    )  # fmt: skip
    assert latest["finished_at"] is not None and latest["error"] == "1 record failed"
    with pytest.raises(InvalidTransition):
        state_store.move_run(run, "running")
    other = state_store.start_run("t", "w")
    assert [r["id"] for r in state_store.runs()] == [other, run] and state_store.runs("s", limit=1)[0]["id"] == run


def test_stale_running_runs_are_abandoned_only_without_a_live_lease(state_store: StateStore) -> None:
    dead, pushing, planning = (state_store.start_run("s", w) for w in ("dead", "pushing", "planning"))
    for run in (dead, pushing, planning):
        state_store.move_run(run, "running")
    plan(state_store, "a")
    state_store.claim("s", "pushing", pushing, 10, lease_s=60)
    assert state_store.acquire_plan("s", "planning", lease_s=60)
    assert state_store.abandon_stale_runs("s", grace_s=60) == [], "a run younger than the grace is presumed alive"
    time.sleep(0.05)
    assert state_store.abandon_stale_runs("s", grace_s=0.01) == [dead]
    statuses = {r["id"]: (r["status"], r["error"]) for r in state_store.runs("s")}
    assert statuses[dead][0] == "abandoned" and "dead" in statuses[dead][1]
    assert statuses[pushing][0] == statuses[planning][0] == "running"
    state_store.move_run(dead, "succeeded")  # a stalled worker that turns up may still record its outcome


def test_pause_planning_lease_and_failure_streak(state_store: StateStore) -> None:
    assert not state_store.is_paused("s")
    state_store.set_paused("s", True)
    assert state_store.is_paused("s") and not state_store.is_paused("t")
    state_store.set_paused("s", False)
    assert state_store.acquire_plan("s", "w1", lease_s=0.2) and state_store.plan_held("s")
    assert not state_store.acquire_plan("s", "w2", lease_s=60)
    time.sleep(0.25)
    assert not state_store.plan_held("s") and state_store.acquire_plan("s", "w2", lease_s=60)
    state_store.release_plan("s", "w1")  # not the holder: no effect
    assert state_store.plan_held("s")
    state_store.release_plan("s", "w2")
    assert not state_store.plan_held("s")
    assert [state_store.note_outcome("s", f) for f in (True, True, False, True)] == [1, 2, 0, 1]


def test_conflicts_are_recorded_per_sync(state_store: StateStore) -> None:
    state_store.record_conflict(1, "s", '["C1"]', "email", "old@x", "new@x", "destination")
    (conflict,) = state_store.conflicts("s")
    assert (conflict["field"], conflict["winner"], conflict["remote_value"]) == ("email", "destination", '"new@x"')
    assert state_store.conflicts("t") == []


def test_claims_tell_a_possibly_applied_attempt_from_a_refused_one(state_store: StateStore) -> None:
    plan(state_store, "a")
    (item,) = state_store.claim("s", "w1", 1, 10, lease_s=0.05)
    assert item.claims == 1
    time.sleep(0.1)  # w1 died after sending: its lease lapses
    (item,) = state_store.claim("s", "w2", 1, 10, 60)
    assert item.claims == 2, "an earlier claim may have reached the shop"
    state_store.fail(item, 1, "INVALID: price", max_attempts=5)  # refused: that claim is settled
    (item,) = state_store.claim("s", "w2", 2, 10, 60)
    assert item.claims == 2
