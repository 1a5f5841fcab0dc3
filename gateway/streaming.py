"""The export budget: a few export slots with workers and connections of their own, and the idle cut.

An export holds a database connection (and a cursor) for as long as its client
takes to read it, so exports must never draw on what ordinary requests use:

- ``ExportBudget`` has ``export_pool_size`` slots; each running export holds one,
  with a worker thread of the export pool and a connection of the database's
  export pool (``Database.stream``). One export past that is answered at once with
  503, ``Retry-After`` (``ExportsBusy``) instead of queueing behind the others.
- Nothing moving for ``api.export_idle_timeout_s`` cuts the export: a client that
  stopped reading (its ``send`` does not complete) or a database that stopped
  sending (its next chunk does not come). The response ends without its last
  chunk, the client's socket is closed, the cursor is closed and the connection and
  slot go back, even when the worker is still stuck in the driver (then as soon
  as the driver call returns).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from litestar.response import Stream
from litestar.response.streaming import ASGIStreamingResponse

from gateway.exceptions import ExportsBusy, GatewayTimeout, TooManyExports
from gateway.metrics import EXPORTS_OPEN
from legacy_adapters.exceptions import BridgeheadError

if TYPE_CHECKING:
    from litestar import Request
    from litestar.types import Receive, Send

__all__ = ("ExportBudget", "ExportStream")

log = structlog.get_logger("bridgehead.export")
_DONE = object()


class ExportBudget:
    """Slots, workers and the idle timeout shared by every export of one app."""

    def __init__(self, slots: int, idle_timeout_s: float, per_subject: int | None = None) -> None:
        self.slots = slots
        self.idle_timeout_s = idle_timeout_s
        self.per_subject = per_subject
        self._by_subject: dict[str, int] = {}
        self._free = threading.BoundedSemaphore(slots)
        self._running = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="bridgehead-export")

    @property
    def running(self) -> int:
        """Exports holding a slot now (their cursor is open or about to be closed)."""
        return self._running

    async def start(
        self, chunks: Iterator[bytes], *, media_type: str, headers: dict[str, str], subject: str = ""
    ) -> ExportStream:
        """Take a slot and read the first chunk (so a database error is still a problem+json).

        Raises:
            TooManyExports: ``subject`` already runs ``per_subject`` exports (429).
            ExportsBusy: every slot is taken.
            GatewayTimeout: the database sent nothing for the idle timeout.
        """
        with self._lock:
            if self.per_subject is not None and self._by_subject.get(subject, 0) >= self.per_subject:
                raise TooManyExports(
                    f"you already run {self.per_subject} export(s), the most one caller may; retry when one ends",
                    headers={"Retry-After": "10"},
                )
            self._by_subject[subject] = self._by_subject.get(subject, 0) + 1
        # From here the subject's count is released exactly once: by _start when no slot is free,
        # else by the run's close (which every path of _start and of the stream reaches).
        return await self._start(chunks, media_type=media_type, headers=headers, subject=subject)

    def _forget(self, subject: str) -> None:
        with self._lock:
            left = self._by_subject.get(subject, 1) - 1
            if left > 0:
                self._by_subject[subject] = left
            else:
                self._by_subject.pop(subject, None)

    async def _start(
        self, chunks: Iterator[bytes], *, media_type: str, headers: dict[str, str], subject: str
    ) -> ExportStream:
        if not self._free.acquire(blocking=False):
            self._forget(subject)
            raise ExportsBusy(
                f"{self.slots} exports are running, the most this gateway runs at once; retry later",
                headers={"Retry-After": "10"},
            )
        with self._lock:
            self._running += 1
        EXPORTS_OPEN.inc()
        run = _ExportRun(self, chunks, subject)
        try:
            first = await run.next_chunk()
        except BaseException:
            await run.close()
            raise
        return ExportStream(run.body(first), run=run, media_type=media_type, headers=headers)

    def _release(self, subject: str = "") -> None:
        self._forget(subject)
        with self._lock:
            self._running -= 1
        EXPORTS_OPEN.dec()
        self._free.release()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _ExportRun:
    """One export's chunks, pulled one hop at a time on the export pool, closed exactly once.

    While one chunk is being sent, the next is already being made on the export's worker: the
    client reads as the database fetches and the rows are encoded, instead of each waiting for
    the other. So at most one chunk is made ahead of what the client has taken.
    """

    def __init__(self, budget: ExportBudget, chunks: Iterator[bytes], subject: str = "") -> None:
        self._budget = budget
        self._subject = subject
        self._chunks = chunks
        self._pending: Future[Any] | None = None
        self._closed = False

    def _make_next(self) -> None:
        """Start making the next chunk on the export's worker."""
        self._pending = self._budget._pool.submit(next, self._chunks, _DONE)

    async def next_chunk(self) -> Any:
        """Make the next chunk and wait for it: ``_DONE`` at the end."""
        self._make_next()
        return await self._take()

    async def _take(self) -> Any:
        """The chunk being made; ``GatewayTimeout`` when the database stalls."""
        assert self._pending is not None
        waiter = asyncio.wrap_future(self._pending)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self._budget.idle_timeout_s)
        except TimeoutError:
            raise GatewayTimeout("the database sent nothing for the export's idle timeout") from None

    async def body(self, first: Any) -> AsyncIterator[bytes]:
        try:
            chunk = first
            while chunk is not _DONE:
                self._make_next()  # made while this one is sent
                yield chunk
                chunk = await self._take()
        finally:
            with anyio.CancelScope(shield=True):  # a cancelled request still releases its cursor
                await self.close()

    async def close(self) -> None:
        """Close the cursor and give the connection and slot back; after a stuck call, once it returns."""
        if self._closed:
            return
        self._closed = True
        pending = self._pending
        if pending is not None and not pending.done():
            # The generator is executing in a worker: closing it now would fail. Close it when it returns.
            pending.add_done_callback(lambda _f: self._budget._pool.submit(self._finish))
            return
        await asyncio.wrap_future(self._budget._pool.submit(self._finish))

    def _finish(self) -> None:
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        except Exception:
            log.exception("closing an export failed")
        finally:
            self._budget._release(self._subject)


class ExportStream(Stream):
    """A streamed export response that is cut when its client stops reading."""

    def __init__(self, content: AsyncIterator[bytes], *, run: _ExportRun, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._run = run

    def to_asgi_response(self, app: Any, request: Request[Any, Any, Any], **kwargs: Any) -> Any:
        response = super().to_asgi_response(app, request, **kwargs)
        assert isinstance(response, ASGIStreamingResponse)
        return _IdleCutResponse(response, self._run._budget.idle_timeout_s, request.scope)


class _IdleCutResponse:
    """Wraps Litestar's streaming response: a ``send`` that does not finish in time ends the export."""

    def __init__(self, inner: ASGIStreamingResponse, idle_timeout_s: float, scope: Any) -> None:
        self._inner = inner
        self._idle = idle_timeout_s
        self._scope = scope

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        inner = self._inner
        try:
            await inner.start_response(send=send)
            if inner.is_head_response:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            elif await self._send_body(send, receive):
                _abort_client_socket(self._scope)
                return
            await inner.after_response()
        finally:
            with anyio.CancelScope(shield=True):  # however it ended, the cursor closes and the slot returns
                aclose = getattr(inner.iterator, "aclose", None)
                if aclose is not None:
                    await aclose()

    async def _send_body(self, send: Send, receive: Receive) -> bool:
        """Stream the chunks; True when the client stalled and the export was cut."""
        inner = self._inner
        stalled = False

        async def timed_send(message: Any) -> None:
            nonlocal stalled
            try:
                with anyio.fail_after(self._idle):
                    await send(message)
            except TimeoutError:
                stalled = True
                raise _ClientStalled from None

        async def stream() -> None:
            try:
                await inner._stream(timed_send)
            except _ClientStalled:
                log.warning("export cut: its client read nothing", idle_timeout_s=self._idle)
            except BridgeheadError as exc:
                # The headers are sent: no problem+json any more. The response ends without its
                # last chunk, which every HTTP client reports as a broken transfer, never as the end.
                log.warning("export cut: the database failed mid-stream", reason=str(exc))
            finally:
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(stream)
            await inner._listen_for_disconnect(cancel_scope=group.cancel_scope, receive=receive)
        return stalled


class _ClientStalled(Exception):
    pass


def _abort_client_socket(scope: Any) -> None:
    """Reset the stalled client's TCP connection, dropping what its kernel buffers still hold.

    The ASGI server closes a connection whose response did not complete, but a
    transport with unsent bytes waits for the client to read them before closing,
    which a stalled client never does. ASGI gives no handle on the socket, so it is
    found by its two addresses (Linux); shutting it down makes the server's pending
    write fail and the server close it, with SO_LINGER 0 turning that close into a reset.
    """
    client, server = scope.get("client"), scope.get("server")
    if not client or not server:
        return
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError, ValueError):
                if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                    continue
                duplicate = socket.socket(fileno=os.dup(int(name)))
                try:
                    if duplicate.type != socket.SOCK_STREAM or duplicate.family not in (
                        socket.AF_INET,
                        socket.AF_INET6,
                    ):
                        continue
                    local, peer = duplicate.getsockname(), duplicate.getpeername()
                    if tuple(peer[:2]) == tuple(client) and local[1] == server[1]:
                        duplicate.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        duplicate.shutdown(socket.SHUT_RDWR)
                        return
                finally:
                    duplicate.close()
