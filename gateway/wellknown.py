"""OAuth 2.0 Protected Resource Metadata (RFC 9728): where a client finds out how to get a token.

``/.well-known/oauth-protected-resource`` describes the whole API, and
``/.well-known/oauth-protected-resource/mcp`` the MCP endpoint (the path-inserted form
RFC 9728 section 3.1 gives for a resource with a path). Both name the mapping's token issuer
as the authorization server; every 401 points to the document in its ``WWW-Authenticate``
challenge (``resource_metadata=``, section 5.1), so an MCP client that connects without a
token can discover where to sign in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from gateway.context import GatewayContext
    from legacy_adapters.mapping.model import Mapping

__all__ = ("METADATA_PATH", "base_url", "metadata_url", "wellknown_handlers")

METADATA_PATH = "/.well-known/oauth-protected-resource"


def base_url(mapping: Mapping, request: Request[Any, Any, Any]) -> str:
    """The API's public origin: ``api.server_url`` when set, else the one the request came to."""
    if mapping.api.server_url:
        return mapping.api.server_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def metadata_url(mapping: Mapping, request: Request[Any, Any, Any]) -> str:
    """The metadata document that describes the resource ``request`` asked for."""
    suffix = "/mcp" if request.url.path == "/mcp" or request.url.path.startswith("/mcp/") else ""
    return f"{base_url(mapping, request)}{METADATA_PATH}{suffix}"


def _scopes(mapping: Mapping) -> list[str]:
    scopes = {"admin"}
    for version in mapping.versions.values():
        for resource in version.resources.values():
            scopes.update(s for s in (resource.scopes.read, resource.scopes.write, resource.unfiltered_scope) if s)
            scopes.update(a.scope for a in resource.actions.values() if a.scope)
            scopes.update(f.scope for f in resource.fields.values() if f.scope)
    return sorted(scopes)


def wellknown_handlers(ctx: GatewayContext) -> list[HTTPRouteHandler]:
    mapping = ctx.mapping
    scopes = _scopes(mapping)

    def document(request: Request[Any, Any, Any], resource: str) -> Response[Any]:
        base = base_url(mapping, request)
        body: dict[str, Any] = {
            "resource": f"{base}{resource}",
            "authorization_servers": [mapping.auth.issuer] if mapping.auth and mapping.auth.issuer else [],
            "bearer_methods_supported": ["header"],
            "scopes_supported": scopes,
            "resource_name": mapping.api.title,
            "resource_documentation": f"{base}/docs",
        }
        return Response(body, media_type="application/json", headers={"Cache-Control": "public, max-age=300"})

    async def api_metadata(request: Request[Any, Any, Any]) -> Response[Any]:
        return document(request, "")

    async def mcp_metadata(request: Request[Any, Any, Any]) -> Response[Any]:
        return document(request, "/mcp")

    return [
        get(METADATA_PATH, include_in_schema=False, name="oauth-protected-resource")(api_metadata),
        get(f"{METADATA_PATH}/mcp", include_in_schema=False, name="oauth-protected-resource-mcp")(mcp_metadata),
    ]
