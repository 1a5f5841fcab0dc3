"""One worker pool for blocking database work, sized to the connection pool.

Handlers are async and make one hop per request into this pool, where the
request is authenticated, queried, decoded and encoded in one go. Sizing the
pool to the connection pool means no worker ever waits for a connection while
holding a thread, the event loop never blocks on a driver call, and the hop
costs a plain ``run_in_executor`` rather than a generic thread-pool dispatch.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ("DatabaseExecutor", "offloaded")

T = TypeVar("T")
_DONE = object()


class DatabaseExecutor:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bridgehead-db")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the pool; context variables (the request id in logs) travel along."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def iterate(self, iterator: Iterator[T]) -> AsyncIterator[T]:
        """Drain a blocking iterator (an export) one item per hop; closing it early closes the iterator."""
        try:
            while True:
                item = await self.run(next, iterator, _DONE)
                if item is _DONE:
                    return
                yield item
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                await self.run(close)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def offloaded(executor: DatabaseExecutor, fn: Callable[..., T]) -> Callable[..., Any]:
    """An async route handler with ``fn``'s signature that runs ``fn`` in ``executor`` (one hop)."""

    @functools.wraps(fn)
    async def handler(**kwargs: Any) -> T:
        return await executor.run(functools.partial(fn, **kwargs))

    return handler
