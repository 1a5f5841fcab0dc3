"""Worker pools for blocking database work, each sized to its connection pool, with a deadline per call.

Handlers are async and make one hop per request into the requests' pool, where
the request is authenticated, queried, decoded and encoded in one go. Sizing the
pool to the connection pool means no worker ever waits for a connection while
holding a thread, the event loop never blocks on a driver call, and the hop
costs a queue put and one ``call_soon_threadsafe`` back (``DatabaseExecutor``).

Every hop has a deadline. A database that stops answering without closing the
link (a hung server, a firewall that drops packets) leaves a driver call blocked
for as long as the outage lasts, whatever the server-side statement timeout; the
caller gets 504 (its call was running) or 503 (it never got a worker) when the
deadline passes, and the stuck worker rejoins the pool once the driver gives up
or the database answers again.

Shutting down drops the calls still queued (their callers are cancelled; new calls get
503) and waits, up to the deadline, for those running: a write abandoned at its deadline
(answered 504) must commit or roll back while its app, its connection pool and whatever
comes after it are not yet running on; a call stuck past that on a silent database is
left to the driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from gateway.exceptions import GatewayTimeout, ServiceUnavailable
from gateway.metrics import DB_WAITING

__all__ = ("DatabaseExecutor", "offloaded")

T = TypeVar("T")
log = structlog.get_logger("bridgehead.executor")

# A call's life: queued -> running -> done, or queued -> dropped (its deadline passed, or shutdown).
_QUEUED, _RUNNING, _DONE, _DROPPED = range(4)


class DatabaseExecutor:
    """``workers`` threads taking calls from one queue; each call answers its event loop directly.

    Not a ``ThreadPoolExecutor``: its ``concurrent.futures.Future`` per call (a ``Condition``, an
    ``RLock``, callbacks chained into an asyncio future by ``wrap_future``) was 12-15 % of a keyed
    read's CPU. Here a call is a slotted object with a state, the worker settles the caller's
    asyncio future with one ``call_soon_threadsafe``, and one lock orders the state changes
    between a worker taking a call and the loop's deadline dropping it.
    """

    def __init__(self, workers: int, deadline_s: float | None = None, *, name: str = "bridgehead-db") -> None:
        self.workers = workers
        self.deadline_s = deadline_s
        self._name = name
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        """Guards every call's state, the running count and the thread list."""
        self._running = 0
        self._idle = threading.Condition(self._lock)
        self._stopped = False

    async def run(self, fn: Callable[..., T], *args: Any, deadline_s: float | None = None) -> T:
        """Run ``fn(*args)`` on a worker; context variables (the request id in logs) travel along.

        Raises:
            GatewayTimeout: ``fn`` started but did not finish within the deadline.
            ServiceUnavailable: every worker stayed busy until the deadline; ``fn`` never ran.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        call = _Call(fn, args, contextvars.copy_context(), loop, future)
        deadline = deadline_s if deadline_s is not None else self.deadline_s
        DB_WAITING.inc()  # until a worker takes it (or it is dropped unstarted)
        try:
            self._submit(call)
        except BaseException:  # refused (shutting down): it never waited
            DB_WAITING.dec()
            raise
        # A timer on the loop rather than asyncio.wait(): no waiter future, set or callbacks per call.
        timer = loop.call_later(deadline, self._expire, call) if deadline is not None else None
        try:
            return await future
        except asyncio.CancelledError:
            if call.expired is None:  # the request itself was cancelled (client gone): so is the call
                if self._drop(call):
                    DB_WAITING.dec()
                raise
            if call.expired == "never ran":
                DB_WAITING.dec()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # The task was cancelled as well (in the deadline's loop turn): that cancellation is
                # not ours to turn into a 503/504 (asyncio.timeout, task groups, a server stopping).
                raise
        finally:
            if timer is not None:
                timer.cancel()
        if call.expired == "never ran":
            raise ServiceUnavailable("every database worker is busy; retry shortly", headers={"Retry-After": "2"})
        log.warning("database call abandoned at its deadline", deadline_s=deadline, call=_name(fn))
        raise GatewayTimeout("the database did not answer in time")

    def _submit(self, call: _Call) -> None:
        with self._lock:
            if self._stopped:
                raise ServiceUnavailable("the gateway is shutting down", headers={"Retry-After": "2"})
            if len(self._threads) < self.workers:  # threads start on demand, as a pool's do
                thread = threading.Thread(target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._queue.put(call)

    def _drop(self, call: _Call) -> bool:
        """Mark a queued call dropped (no worker will start it); False when it already started."""
        with self._lock:
            if call.state != _QUEUED:
                return False
            call.state = _DROPPED
            return True

    def _expire(self, call: _Call) -> None:
        """The call's deadline, on the loop: drop it where it waits, or give up on it where it runs."""
        if call.future.done():
            return
        with self._lock:
            if call.state == _DONE:  # the answer is on its way to the loop
                return
            call.expired = "never ran" if call.state == _QUEUED else "running"
            if call.state == _QUEUED:
                call.state = _DROPPED
        # A running call cannot be stopped from here: it finishes (or fails) in its thread and its
        # result is dropped.
        call.future.cancel()

    def _work(self) -> None:
        while (call := self._queue.get()) is not None:
            with self._lock:
                if call.state != _QUEUED:
                    continue
                call.state = _RUNNING
                self._running += 1
            DB_WAITING.dec()
            try:
                result = call.context.run(call.fn, *call.args)
            except StopIteration as exc:  # an asyncio future refuses it (TypeError in the loop: no answer)
                error = RuntimeError(f"{_name(call.fn)} raised StopIteration")
                error.__cause__ = exc
                outcome: tuple[bool, Any] = (False, error)
            except BaseException as exc:  # handed to the caller, as a pool's future would
                outcome = (False, exc)
            else:
                outcome = (True, result)
            finally:
                with self._lock:
                    call.state = _DONE
                    self._running -= 1
                    self._idle.notify_all()
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits for this answer
                call.loop.call_soon_threadsafe(_settle, call.future, outcome)

    def shutdown(self) -> bool:
        """The app's shutdown hook (it takes no arguments): ``stop`` within the calls' deadline."""
        return self.stop(self.deadline_s or 0.0)

    def stop(self, wait_s: float) -> bool:
        """Drop the queued calls and wait up to ``wait_s`` for the running ones; whether none is left running."""
        with self._lock:
            self._stopped = True
            threads = len(self._threads)
        while True:  # every call still queued is dropped, and its caller told so
            try:
                call = self._queue.get_nowait()
            except queue.Empty:
                break
            if call is not None and self._drop(call):
                DB_WAITING.dec()
                with contextlib.suppress(RuntimeError):  # its loop is gone: so is its caller
                    call.loop.call_soon_threadsafe(call.future.cancel)
        for _ in range(threads):
            self._queue.put(None)  # one stop sign per worker, after whatever it is running now
        until = time.monotonic() + wait_s
        with self._idle:
            while self._running and (left := until - time.monotonic()) > 0:
                self._idle.wait(left)
            if self._running:
                log.warning("database calls still running at shutdown", running=self._running)
            return not self._running


class _Call:
    """One call waiting for, or running on, a worker."""

    __slots__ = ("args", "context", "expired", "fn", "future", "loop", "state")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        context: contextvars.Context,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self.fn, self.args, self.context, self.loop, self.future = fn, args, context, loop, future
        self.state = _QUEUED
        self.expired: str | None = None
        """Set by the deadline: "never ran" (dropped from the queue) or "running" (given up on)."""


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():  # cancelled at its deadline or with its request
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _name(fn: Callable[..., Any]) -> str:
    inner = getattr(fn, "func", fn)
    return getattr(inner, "__qualname__", type(inner).__name__)


def offloaded(executor: DatabaseExecutor, fn: Callable[..., T]) -> Callable[..., Any]:
    """An async route handler with ``fn``'s signature that runs ``fn`` in ``executor`` (one hop)."""

    @functools.wraps(fn)
    async def handler(**kwargs: Any) -> T:
        return await executor.run(functools.partial(fn, **kwargs))

    return handler
