"""One Router per mapped API version; deprecated versions answer with Deprecation and Sunset.

Versions differ as data (``extends`` in the mapping); here they only become
routes under ``/{version}`` and the headers that warn clients off old ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Router
from litestar.enums import ScopeType

from gateway.resources import resource_handlers
from gateway.writes import write_handlers

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar.types import Message, Scope

    from gateway.context import GatewayContext

__all__ = ("deprecation_headers", "version_routers")


def version_routers(ctx: GatewayContext) -> list[Router]:
    routers = []
    for version, resources in ctx.versions.items():
        handlers: list[Any] = []
        for resource in resources.values():
            handlers.extend(resource_handlers(ctx, resource))
            handlers.extend(write_handlers(ctx, resource))
        routers.append(Router(path=f"/{version}", route_handlers=handlers))
    return routers


def deprecation_headers(deprecated: dict[str, dict[str, str]]) -> Callable[[Message, Scope], Awaitable[None]]:
    """A ``before_send`` hook adding ``Deprecation``/``Sunset`` to every response under a deprecated version.

    A hook rather than middleware: Litestar runs middleware only for matched routes, and a
    404 under a deprecated version must warn the client too.
    """
    prefixes = {f"/{v}/": [(k.lower().encode(), v.encode()) for k, v in h.items()] for v, h in deprecated.items()}

    async def add(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope["type"] != ScopeType.HTTP:
            return
        extra = next((h for prefix, h in prefixes.items() if scope["path"].startswith(prefix)), None)
        if extra:
            message["headers"] = [*message.get("headers", ()), *extra]

    return add
