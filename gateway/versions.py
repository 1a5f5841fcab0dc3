"""One Router per mapped API version; retiring versions answer with Deprecation, Sunset and a successor Link.

Versions differ as data (``extends`` in the mapping); here they only become
routes under ``/{version}`` and the headers that warn clients off old ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from litestar import Router
from litestar.enums import ScopeType

from gateway.aggregates import aggregate_handlers
from gateway.resources import ResourceReads, resource_handlers
from gateway.writes import write_handlers

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar.types import Message, Scope

    from gateway.context import GatewayContext
    from legacy_adapters.mapping.model import Mapping
    from legacy_adapters.query.resource import Resource

__all__ = ("lifecycle_headers", "resource_reads", "version_routers")


def resource_reads(ctx: GatewayContext) -> dict[tuple[str, str], ResourceReads]:
    """Every resource's reads by (version, resource name): shared by its routes and the fast path."""
    return {
        (version, name): ResourceReads(ctx, resource)
        for version, resources in ctx.versions.items()
        for name, resource in resources.items()
    }


def version_routers(ctx: GatewayContext, reads: dict[tuple[str, str], ResourceReads]) -> list[Router]:
    routers = []
    for version, resources in ctx.versions.items():
        handlers: list[Any] = []
        for resource in resources.values():
            handlers.extend(aggregate_handlers(ctx, resource))
            handlers.extend(resource_handlers(ctx, reads[(version, resource.name)]))
            handlers.extend(write_handlers(ctx, resource))
        routers.append(Router(path=f"/{version}", route_handlers=handlers))
    return routers


def lifecycle_headers(
    mapping: Mapping, versions: dict[str, dict[str, Resource]]
) -> Callable[[Message, Scope], Awaitable[None]] | None:
    """A ``before_send`` hook announcing each version's retirement on every response under it.

    ``Deprecation: @<epoch>`` (RFC 9745) from ``deprecated:``, ``Sunset`` (RFC 8594) from ``sunset:``,
    and ``Link: <…>; rel="successor-version"`` (RFC 5829) to the same resource path in
    ``successor:`` when it has that resource, else to the successor's OpenAPI document. None when
    no version announces anything.

    A hook rather than middleware: Litestar runs middleware only for matched routes, and a
    404 under a deprecated version must warn the client too.
    """
    fixed: dict[str, list[tuple[bytes, bytes]]] = {}
    successors: dict[str, tuple[str, set[str]]] = {}
    for name, spec in mapping.versions.items():
        headers = []
        if spec.deprecated_at is not None:
            headers.append((b"deprecation", f"@{spec.deprecated_at}".encode()))
        if spec.sunset:
            headers.append((b"sunset", spec.sunset.encode()))
        if headers:
            fixed[name] = headers
        if spec.successor:
            successors[name] = (spec.successor, set(versions.get(spec.successor, {})))
    if not fixed and not successors:
        return None

    async def add(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope["type"] != ScopeType.HTTP:
            return
        version, _, rest = scope["path"].lstrip("/").partition("/")
        if version not in fixed and version not in successors:
            return
        extra = list(fixed.get(version, ()))
        if version in successors:
            successor, resources = successors[version]
            target = f"/{successor}/{rest}" if rest.partition("/")[0] in resources else f"/openapi/{successor}.json"
            extra.append((b"link", f'<{quote(target, safe="/")}>; rel="successor-version"'.encode()))
        message["headers"] = [*message.get("headers", ()), *extra]

    return add
