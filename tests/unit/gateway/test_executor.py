"""The database executor's deadline: a stuck call is answered 504, a call that never got a worker 503."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from gateway.exceptions import GatewayTimeout, ServiceUnavailable
from gateway.executor import DatabaseExecutor


async def _hold_the_worker(executor: DatabaseExecutor, release: threading.Event) -> asyncio.Task[bool]:
    """A call that keeps one worker busy until ``release`` is set, returned once the worker runs it."""
    started = threading.Event()

    def hold() -> bool:
        started.set()
        return release.wait(10)

    task = asyncio.create_task(executor.run(hold))
    assert await asyncio.to_thread(started.wait, 5), "no worker took the call"
    return task


def test_a_call_past_its_deadline_is_504_and_a_queued_one_503_and_never_runs() -> None:
    executor = DatabaseExecutor(1, deadline_s=0.3)
    release = threading.Event()
    ran: list[str] = []

    def stuck() -> str:  # a driver call on a database that went silent
        release.wait(10)
        ran.append("stuck")
        return "late"

    def queued() -> str:
        ran.append("queued")
        return "never"

    async def scenario() -> None:
        first = asyncio.create_task(executor.run(stuck))
        await asyncio.sleep(0.05)  # the only worker is now inside stuck()
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as busy:
            await executor.run(queued)
        assert busy.value.headers["Retry-After"]
        with pytest.raises(GatewayTimeout):
            await first
        assert time.monotonic() - started < 2
        release.set()
        # The stuck worker rejoins the pool once its call returns; the queued call was dropped.
        assert await executor.run(lambda: "fresh") == "fresh"

    try:
        asyncio.run(scenario())
        assert ran == ["stuck"]
    finally:
        release.set()
        executor.shutdown()


def test_errors_of_the_call_itself_pass_through_unchanged() -> None:
    executor = DatabaseExecutor(1, deadline_s=5)

    def fails() -> None:
        raise TimeoutError("a driver's own timeout, not the deadline")

    try:
        with pytest.raises(TimeoutError, match="driver's own"):
            asyncio.run(executor.run(fails))
    finally:
        executor.shutdown()


def test_calls_waiting_for_a_worker_are_counted_until_they_start_or_give_up() -> None:
    from gateway.metrics import DB_WAITING

    def waiting() -> float:
        return DB_WAITING._value.get()  # the process's own value (no multiprocess dir in unit tests)

    executor = DatabaseExecutor(1, deadline_s=5)
    release = threading.Event()
    base = waiting()

    async def scenario() -> None:
        busy = await _hold_the_worker(executor, release)
        assert waiting() == base  # the one worker took it at once
        queued = [asyncio.create_task(executor.run(lambda: "done")) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert waiting() == base + 3  # the pool is saturated: three calls wait for it
        release.set()
        assert await busy is True and [await q for q in queued] == ["done"] * 3
        assert waiting() == base
        # A queued call that never got a worker before its deadline is no longer waiting either.
        release.clear()
        blocker = await _hold_the_worker(executor, release)
        with pytest.raises(ServiceUnavailable):
            await executor.run(lambda: "never", deadline_s=0.1)
        assert waiting() == base
        release.set()
        await blocker

    try:
        asyncio.run(scenario())
    finally:
        executor.shutdown()


def test_shutdown_waits_for_a_call_abandoned_at_its_deadline() -> None:
    """A write answered 504 still runs: it must finish while its app is shutting down, not after."""
    executor = DatabaseExecutor(1, deadline_s=0.05)
    release = threading.Event()
    events: list[str] = []

    def write() -> None:
        release.wait(30)
        events.append("write finished")

    async def abandoned() -> None:
        with pytest.raises(GatewayTimeout):
            await executor.run(write)

    asyncio.run(abandoned())
    stopping = threading.Thread(target=lambda: events.append(f"stopped, all done: {executor.stop(30)}"))
    stopping.start()
    stopping.join(0.5)
    assert stopping.is_alive() and events == []  # still waiting for the write, however long it is kept
    release.set()
    stopping.join()
    assert events == ["write finished", "stopped, all done: True"]


def test_shutdown_gives_up_on_a_call_stuck_past_the_wait() -> None:
    executor = DatabaseExecutor(1, deadline_s=0.05)
    release = threading.Event()

    async def abandoned() -> None:
        with pytest.raises(GatewayTimeout):
            await executor.run(release.wait, 30)

    asyncio.run(abandoned())
    assert executor.stop(0.1) is False  # a database gone silent does not hold the shutdown forever
    release.set()


def test_a_call_whose_request_went_away_while_queued_never_runs() -> None:
    executor = DatabaseExecutor(1, deadline_s=5)
    release = threading.Event()
    ran: list[str] = []

    async def scenario() -> None:
        busy = await _hold_the_worker(executor, release)
        gone = asyncio.create_task(executor.run(ran.append, "gone"))
        await asyncio.sleep(0.05)
        gone.cancel()  # the client disconnected while its call waited for the worker
        with pytest.raises(asyncio.CancelledError):
            await gone
        release.set()
        await busy
        assert await executor.run(ran.append, "next") is None

    try:
        asyncio.run(scenario())
        assert ran == ["next"]
    finally:
        release.set()
        executor.shutdown()


def test_shutdown_drops_queued_calls_and_refuses_new_ones() -> None:
    executor = DatabaseExecutor(1, deadline_s=5)
    release = threading.Event()
    ran: list[str] = []

    async def scenario() -> None:
        busy = await _hold_the_worker(executor, release)
        queued = asyncio.create_task(executor.run(ran.append, "queued"))
        await asyncio.sleep(0.05)
        stopping = asyncio.get_running_loop().run_in_executor(None, executor.stop, 5)
        await asyncio.sleep(0.05)
        with pytest.raises(asyncio.CancelledError):
            await queued  # dropped: its caller is told at once, not left waiting
        with pytest.raises(ServiceUnavailable, match="shutting down"):
            await executor.run(ran.append, "late")
        release.set()
        assert await busy is True and await stopping is True

    try:
        asyncio.run(scenario())
        assert ran == []
    finally:
        release.set()


def test_context_variables_reach_the_worker() -> None:
    import contextvars

    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    executor = DatabaseExecutor(2, deadline_s=5)

    async def one(rid: str) -> str:
        request_id.set(rid)
        return await executor.run(request_id.get)

    async def scenario() -> list[str]:
        return list(await asyncio.gather(*(one(f"r{i}") for i in range(20))))

    try:
        assert asyncio.run(scenario()) == [f"r{i}" for i in range(20)]
    finally:
        executor.shutdown()


def test_a_call_refused_at_shutdown_is_not_left_counted_as_waiting() -> None:
    from gateway.metrics import DB_WAITING

    executor = DatabaseExecutor(1, deadline_s=5)
    executor.stop(0)
    before = DB_WAITING._value.get()
    with pytest.raises(ServiceUnavailable, match="shutting down"):
        asyncio.run(executor.run(lambda: "never"))
    assert DB_WAITING._value.get() == before


def test_a_call_raising_stop_iteration_wakes_its_caller_at_once() -> None:
    """An asyncio future refuses StopIteration (TypeError in the loop's callback): the caller was left
    waiting for the deadline (a 504 for what was a bug of the call's own)."""
    executor = DatabaseExecutor(1, deadline_s=5)

    def exhausted() -> None:
        next(iter(()))

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="StopIteration") as raised:
            await asyncio.wait_for(executor.run(exhausted), 2)
        assert isinstance(raised.value.__cause__, StopIteration)

    try:
        asyncio.run(scenario())
    finally:
        executor.shutdown()


def test_a_caller_cancelled_after_its_deadline_fired_stays_cancelled() -> None:
    """The deadline and the caller's own cancellation in one loop turn: the cancellation wins, as
    ``asyncio.timeout`` and task groups expect (a 503/504 in its place would swallow it)."""
    executor = DatabaseExecutor(1, deadline_s=0.05)
    release = threading.Event()

    tasks: list[asyncio.Task[bool]] = []
    expire = executor._expire

    def expire_then_cancel(call: Any) -> None:  # the caller's cancellation lands in the deadline's loop turn
        expire(call)
        tasks[0].cancel()

    executor._expire = expire_then_cancel  # type: ignore[method-assign]

    async def scenario() -> None:
        tasks.append(asyncio.create_task(executor.run(release.wait, 10)))
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        executor.shutdown()
