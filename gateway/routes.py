"""Route handler classes for the generated data routes: Litestar's, minus a copy per guard.

Litestar hands every guard ``copy(handler)``, so a guard could not change the handler
for later requests. That copy cost 4-9 % of a data request when profiled (two guards: the
readiness gate and the resource's read check). Bridgehead's guards only read the
handler (its ``opt``), never write it, so these handlers pass themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.handlers import HTTPRouteHandler

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

__all__ = ("read_route",)


class read_route(HTTPRouteHandler):
    """``@get`` whose guards receive the handler itself (they must not modify it)."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(path, http_method="GET", **kwargs)

    async def authorize_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        for guard in self.resolve_guards():
            await guard(connection, self)  # type: ignore[misc]  # Litestar's own call, minus the copy
