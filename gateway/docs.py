"""Serve the generated OpenAPI documents and an interactive reference page at ``/docs``."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import MediaType, Response, get
from litestar.params import FromPath

from gateway.exceptions import NotFound
from gateway.openapi import build_openapi
from gateway.readiness import UNGATED

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from gateway.context import GatewayContext

__all__ = ("docs_handlers", "openapi_json")


def openapi_json(document: dict[str, Any]) -> bytes:
    """The committed form: stable key order as generated, two-space indent, trailing newline."""
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="docs"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>
SwaggerUIBundle({{dom_id: "#docs", urls: {urls}, "urls.primaryName": "{primary}", persistAuthorization: true}});
</script>
<noscript>The OpenAPI documents: {links}</noscript>
</body></html>
"""


def docs_handlers(ctx: GatewayContext) -> list[HTTPRouteHandler]:
    documents = {v: openapi_json(build_openapi(ctx.mapping, v, r)) for v, r in ctx.versions.items()}

    @get("/openapi/{name:str}", include_in_schema=False, sync_to_thread=False, opt=UNGATED)
    def openapi_document(name: FromPath[str]) -> Response[bytes]:
        version = name.removesuffix(".json")
        if version not in documents:
            raise NotFound(f"no API version {version!r} (versions: {', '.join(documents)})")
        return Response(documents[version], media_type="application/vnd.oai.openapi+json")

    @get("/docs", include_in_schema=False, sync_to_thread=False, opt=UNGATED)
    def docs_page() -> Response[str]:
        urls = [{"url": f"/openapi/{v}.json", "name": v} for v in documents]
        links = " ".join(f'<a href="/openapi/{html.escape(v)}.json">{html.escape(v)}</a>' for v in documents)
        page = _PAGE.format(
            title=html.escape(ctx.mapping.api.title),
            urls=msgspec.json.encode(urls).decode(),
            primary=html.escape(list(documents)[-1]),
            links=links,
        )
        return Response(page, media_type=MediaType.HTML)

    return [openapi_document, docs_page]
