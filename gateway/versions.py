"""One Router per mapped API version; deprecated versions answer with Deprecation and Sunset.

Versions differ as data (``extends`` in the mapping); here they only become
routes under ``/{version}`` and the headers that warn clients off old ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Router

from gateway.resources import resource_handlers
from gateway.writes import write_handlers

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from gateway.context import GatewayContext

__all__ = ("DeprecationHeaders", "version_routers")


def version_routers(ctx: GatewayContext) -> list[Router]:
    routers = []
    for version, resources in ctx.versions.items():
        handlers: list[Any] = []
        for resource in resources.values():
            handlers.extend(resource_handlers(ctx, resource))
            handlers.extend(write_handlers(ctx, resource))
        routers.append(Router(path=f"/{version}", route_handlers=handlers))
    return routers


class DeprecationHeaders:
    """ASGI middleware adding ``Deprecation``/``Sunset`` to every response of a deprecated version.

    Middleware rather than a hook so error responses and streams carry them too.
    """

    def __init__(self, app: ASGIApp, deprecated: dict[str, dict[str, str]]) -> None:
        self.app = app
        self.deprecated = {f"/{v}/": headers for v, headers in deprecated.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extra = None
        if scope["type"] == "http":
            extra = next((h for prefix, h in self.deprecated.items() if scope["path"].startswith(prefix)), None)
        if extra is None:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend((k.lower().encode(), v.encode()) for k, v in extra.items())
                message = {**message, "headers": headers}  # type: ignore[typeddict-item]
            await send(message)

        await self.app(scope, receive, send_with_headers)
