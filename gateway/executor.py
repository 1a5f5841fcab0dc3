"""Worker pools for blocking database work, each sized to its connection pool, with a deadline per call.

Handlers are async and make one hop per request into the requests' pool, where
the request is authenticated, queried, decoded and encoded in one go. Sizing the
pool to the connection pool means no worker ever waits for a connection while
holding a thread, the event loop never blocks on a driver call, and the hop
costs a plain ``run_in_executor`` rather than a generic thread-pool dispatch.

Every hop has a deadline. A database that stops answering without closing the
link (a hung server, a firewall that drops packets) leaves a driver call blocked
for as long as the outage lasts, whatever the server-side statement timeout; the
caller gets 504 (its call was running) or 503 (it never got a worker) when the
deadline passes, and the stuck worker rejoins the pool once the driver gives up
or the database answers again.

Shutting down drops the calls still queued and waits, up to the deadline, for those
running: a write abandoned at its deadline (answered 504) must commit or roll back
while its app, its connection pool and whatever comes after it are not yet running
on; a call stuck past that on a silent database is left to the driver.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import structlog

from gateway.exceptions import GatewayTimeout, ServiceUnavailable
from gateway.metrics import DB_WAITING

__all__ = ("DatabaseExecutor", "offloaded")

T = TypeVar("T")
log = structlog.get_logger("bridgehead.executor")


class DatabaseExecutor:
    def __init__(self, workers: int, deadline_s: float | None = None, *, name: str = "bridgehead-db") -> None:
        self.workers = workers
        self.deadline_s = deadline_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._running = 0
        self._idle = threading.Condition()

    async def run(self, fn: Callable[..., T], *args: Any, deadline_s: float | None = None) -> T:
        """Run ``fn(*args)`` in the pool; context variables (the request id in logs) travel along.

        Raises:
            GatewayTimeout: ``fn`` started but did not finish within the deadline.
            ServiceUnavailable: every worker stayed busy until the deadline; ``fn`` never ran.
        """
        context = contextvars.copy_context()
        call: Callable[[], T] = functools.partial(self._started_then, context.run, fn, *args)
        deadline = deadline_s if deadline_s is not None else self.deadline_s
        loop = asyncio.get_running_loop()
        DB_WAITING.inc()  # until a worker takes it (or it is cancelled unstarted)
        if deadline is None:
            return await loop.run_in_executor(self._pool, call)
        source = self._pool.submit(call)
        future = asyncio.wrap_future(source, loop=loop)
        # A timer on the loop rather than asyncio.wait(): no waiter future, set or callbacks per call.
        expiry = _Expiry(source, future)
        timer = loop.call_later(deadline, expiry)
        try:
            return await future
        except asyncio.CancelledError:
            if expiry.fired is None:  # the request itself was cancelled (client gone): so is the call
                if source.cancel():
                    DB_WAITING.dec()
                raise
        finally:
            timer.cancel()
        if expiry.fired == "never ran":
            DB_WAITING.dec()
            raise ServiceUnavailable("every database worker is busy; retry shortly", headers={"Retry-After": "2"})
        log.warning("database call abandoned at its deadline", deadline_s=deadline, call=_name(fn))
        raise GatewayTimeout("the database did not answer in time")

    def shutdown(self) -> bool:
        """The app's shutdown hook (it takes no arguments): ``stop`` within the calls' deadline."""
        return self.stop(self.deadline_s or 0.0)

    def stop(self, wait_s: float) -> bool:
        """Drop the queued calls and wait up to ``wait_s`` for the running ones; whether none is left running."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        until = time.monotonic() + wait_s
        with self._idle:
            while self._running and (left := until - time.monotonic()) > 0:
                self._idle.wait(left)
            if self._running:
                log.warning("database calls still running at shutdown", running=self._running)
            return not self._running

    def _started_then(self, run: Callable[..., Any], fn: Callable[..., T], *args: Any) -> T:
        """In the worker: the call is no longer waiting, then it runs (``run`` is a context's ``run``)."""
        DB_WAITING.dec()
        with self._idle:
            self._running += 1
        try:
            result: T = run(fn, *args)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()
        return result


class _Expiry:
    """The deadline of one call: cancels it where it waits, and says whether it had started."""

    __slots__ = ("fired", "future", "source")

    def __init__(self, source: Future[Any], future: asyncio.Future[Any]) -> None:
        self.source = source
        self.future = future
        self.fired: str | None = None

    def __call__(self) -> None:
        if self.future.done() or self.source.done():  # the answer is on its way to the loop
            return
        # Cancelled here and now, so a queued call can never start later (the asyncio future's own
        # cancel reaches it only on the next loop turn). A running call cannot be stopped from
        # here: it finishes (or fails) in its thread and its result is dropped.
        self.fired = "never ran" if self.source.cancel() else "running"
        self.future.cancel()


def _name(fn: Callable[..., Any]) -> str:
    inner = getattr(fn, "func", fn)
    return getattr(inner, "__qualname__", type(inner).__name__)


def offloaded(executor: DatabaseExecutor, fn: Callable[..., T]) -> Callable[..., Any]:
    """An async route handler with ``fn``'s signature that runs ``fn`` in ``executor`` (one hop)."""

    @functools.wraps(fn)
    async def handler(**kwargs: Any) -> T:
        return await executor.run(functools.partial(fn, **kwargs))

    return handler
