"""The rate-limit counters: exact under workers racing, windows that end, a full table that stays safe."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from gateway.rate_limit import Limit, MemoryCounters, SharedFileCounters


class _Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _hammer(folder: str, hits: int, keys: int, start: Any) -> None:
    counters = SharedFileCounters(Path(folder))
    start.wait(30)  # every worker at once: their hits interleave
    for i in range(hits):
        counters.hit_now(f"client-{i % keys}".encode(), 3600)


def test_workers_hitting_one_file_at_once_lose_no_count(tmp_path: Path) -> None:
    """Four processes, 15,000 hits each over three keys: every hit counted once (a flock, not a race)."""
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [context.Process(target=_hammer, args=(str(tmp_path), 15_000, 3, start)) for _ in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    counters = SharedFileCounters(tmp_path)
    assert [counters.hit_now(f"client-{k}".encode(), 3600)[0] for k in range(3)] == [20_001, 20_001, 20_001]


def test_a_window_starts_with_the_first_request_and_ends_after_its_period(tmp_path: Path) -> None:
    clock = _Clock()
    for counters in (SharedFileCounters(tmp_path, clock), MemoryCounters(clock)):
        assert asyncio.run(counters.hit(b"k", 60)) == (1, 60)
        clock.now += 59.5
        assert asyncio.run(counters.hit(b"k", 60)) == (2, 0.5)  # the same window, half a second left
        clock.now += 0.5  # the window has ended: the next request starts a new one, at 1
        assert asyncio.run(counters.hit(b"k", 60)) == (1, 60)
        assert asyncio.run(counters.hit(b"other", 60))[0] == 1


def test_a_full_table_takes_over_the_slot_that_ends_first_and_never_overcounts(tmp_path: Path) -> None:
    """More live keys than slots: a key may start again (a few requests more), never borrow another's count."""
    clock = _Clock()
    counters = SharedFileCounters(tmp_path, clock, slots=8)
    for i in range(8):
        clock.now += 1
        assert counters.hit_now(f"key-{i}".encode(), 600)[0] == 1
    assert counters.hit_now(b"newcomer", 600)[0] == 1
    assert counters.hit_now(b"newcomer", 600)[0] == 2
    counts = [counters.hit_now(f"key-{i}".encode(), 600)[0] for i in range(8)]
    assert all(c in (1, 2) for c in counts) and counts.count(1) >= 1


def test_memory_counters_drop_ended_windows_as_they_grow() -> None:
    clock = _Clock()
    counters = MemoryCounters(clock, prune_at=4)
    for i in range(4):
        asyncio.run(counters.hit(f"old-{i}".encode(), 10))
    clock.now += 11
    asyncio.run(counters.hit(b"new", 10))
    assert len(counters._counts) == 1


@pytest.mark.parametrize("count", [1, 3])
def test_a_limit_allows_its_count_then_refuses_until_the_window_ends(count: int) -> None:
    clock = _Clock()
    limit = Limit(count, 60, "minute", "per token identity", lambda scope: scope["who"], MemoryCounters(clock), clock)
    verdicts = [asyncio.run(limit.check({"who": "a"})) for _ in range(count + 1)]
    assert [v.allowed for v in verdicts if v] == [True] * count + [False]
    refused = verdicts[-1]
    assert refused is not None and refused.headers()["Retry-After"] == "60" and refused.remaining == 0
    assert asyncio.run(limit.check({"who": "b"})).allowed  # type: ignore[union-attr]
    assert asyncio.run(Limit(1, 1, "second", "x", lambda scope: None, MemoryCounters()).check({})) is None
    clock.now += 60
    assert asyncio.run(limit.check({"who": "a"})).allowed  # type: ignore[union-attr]


def test_memory_counters_stay_bounded_under_a_flood_of_identities() -> None:
    """More live windows than the capacity: the ones ending soonest go, the newest keep counting."""
    clock = _Clock()
    counters = MemoryCounters(clock, prune_at=4, capacity=8)
    for i in range(100):
        clock.now += 0.01
        asyncio.run(counters.hit(f"flood-{i}".encode(), 60))
        assert len(counters._counts) <= 8
    assert asyncio.run(counters.hit(b"flood-99", 60))[0] == 2  # the latest client kept its count
