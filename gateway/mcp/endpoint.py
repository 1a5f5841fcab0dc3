"""``/mcp`` in the Litestar app, with the MCP SDK loaded on the first call, not at start-up.

The SDK and what it brings (pydantic, starlette, its transports) take ~25 MB of every worker's
memory; a gateway nobody calls over MCP should not carry them. The session manager therefore
starts in a task of the app's lifespan when the first ``/mcp`` request asks for it, runs until
the app stops, and is entered and left by that one task (anyio's task groups require it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from litestar import asgi

from gateway.auth.guards import token_guard
from gateway.exceptions import ServiceUnavailable

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.handlers import ASGIRouteHandler
    from litestar.types import Receive, Scope, Send

    from gateway.context import GatewayContext

__all__ = ("McpEndpoint",)

log = structlog.get_logger("bridgehead.mcp")


class McpEndpoint:
    """``/mcp``: the SDK's Streamable HTTP transport behind the app's own auth, started on first use."""

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.app: Litestar | None = None
        self._manager: Any = None
        self._wanted: anyio.Event | None = None
        self._ready: anyio.Event | None = None
        self._failed = False

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """While the app runs, a task that starts the SDK's session manager once a request wants it."""
        self.app = app
        self._wanted, self._ready, self._failed = anyio.Event(), anyio.Event(), False
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(self._serve, stop)
            try:
                yield
            finally:
                stop.set()
                self._wanted.set()  # a manager never asked for ends its task too
        self._manager = self._wanted = self._ready = None

    async def _serve(self, stop: anyio.Event) -> None:
        assert self._wanted is not None and self._ready is not None
        await self._wanted.wait()
        if stop.is_set():
            return
        try:
            from gateway.mcp.server import session_manager

            manager = session_manager(self.ctx, lambda: self.app)
            async with manager.run():
                self._manager = manager
                self._ready.set()
                await stop.wait()
        except Exception:
            log.exception("the MCP server failed")
            self._failed = True
        finally:
            self._manager = None
            self._ready.set()

    async def _running(self) -> Any:
        wanted, ready = self._wanted, self._ready
        if self._manager is None and wanted is not None and ready is not None and not self._failed:
            wanted.set()
            with anyio.move_on_after(30):
                await ready.wait()
        if self._manager is None:
            raise ServiceUnavailable("the MCP server is not running", headers={"Retry-After": "1"})
        return self._manager

    def handlers(self) -> list[ASGIRouteHandler]:
        required = self.ctx.mapping.auth is not None

        async def mcp(scope: Scope, receive: Receive, send: Send) -> None:
            manager = await self._running()
            await manager.handle_request(scope, receive, send)

        return [asgi("/mcp", name="mcp", guards=[token_guard(required)], copy_scope=False)(mcp)]
