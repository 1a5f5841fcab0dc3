"""Serve the generated OpenAPI documents and an interactive reference page at ``/docs``."""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import swagger_ui_bundle
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
<link rel="icon" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head><body><div id="docs" data-urls="{urls}" data-primary="{primary}"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script>
<noscript>The OpenAPI documents: {links}</noscript>
</body></html>
"""

# The page's own script, served from /docs/init.js so the Content-Security-Policy needs no
# 'unsafe-inline' for scripts. The version list travels in the page's data attributes.
_INIT = b"""const el = document.getElementById("docs");
window.ui = SwaggerUIBundle({
  dom_id: "#docs",
  urls: JSON.parse(el.dataset.urls),
  "urls.primaryName": el.dataset.primary,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
  persistAuthorization: true,
  validatorUrl: null,
});
"""

# Swagger UI ships inside the wheel (swagger-ui-bundle-v2): /docs works on a factory network
# without internet, and the policy below makes the browser refuse anything from elsewhere.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)
_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}


def _asset(name: str) -> bytes:
    return (Path(swagger_ui_bundle.swagger_ui_path) / name).read_bytes()


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
            urls=html.escape(msgspec.json.encode(urls).decode()),
            primary=html.escape(list(documents)[-1]),
            links=links,
        )
        return Response(page, media_type=MediaType.HTML, headers={"Content-Security-Policy": _CSP})

    @get("/docs/init.js", include_in_schema=False, sync_to_thread=False, opt=UNGATED)
    def docs_init() -> Response[bytes]:
        return Response(_INIT, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})

    @get("/docs/assets/{name:str}", include_in_schema=False, sync_to_thread=False, opt=UNGATED)
    def docs_asset(name: FromPath[str]) -> Response[bytes]:
        if name not in _ASSETS:  # a fixed list: no path from the request ever reaches the file system
            raise NotFound(f"no documentation asset {name!r}")
        return Response(
            cached_asset(name), media_type=_ASSETS[name], headers={"Cache-Control": "public, max-age=86400"}
        )

    return [openapi_document, docs_page, docs_init, docs_asset]


cached_asset = cache(_asset)
