"""The console's page and its two assets, served from the wheel with a strict Content-Security-Policy.

``/admin`` is public on purpose (a browser's navigation sends no bearer token): the page
holds no data. Its script asks the admin API for everything with the token the operator
pasted (or got from the identity provider), which the API checks like any other call.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from litestar import MediaType, Response, get
from litestar.params import FromPath

from gateway.exceptions import NotFound
from gateway.readiness import UNGATED

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from legacy_adapters.mapping.model import Mapping

__all__ = ("CSP", "console_page_handlers")

_STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_ASSETS = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache"}  # fmt: skip


@cache
def _read(name: str) -> bytes:
    return (_STATIC / name).read_bytes()


def console_page_handlers(mapping: Mapping) -> list[HTTPRouteHandler]:
    auth = mapping.auth
    page = (
        _read("console.html")
        .decode()
        .format(
            title=html.escape(mapping.api.title),
            login_url=html.escape((auth.login_url if auth else None) or ""),
            client_id=html.escape((auth.login_client_id if auth else None) or ""),
        )
    )

    @get(["/admin", "/admin/"], include_in_schema=False, sync_to_thread=False, opt=UNGATED)
    def console_page() -> Response[str]:
        return Response(page, media_type=MediaType.HTML, headers=_HEADERS)

    @get("/admin/assets/{name:str}", include_in_schema=False, sync_to_thread=False, opt=UNGATED)
    def console_asset(name: FromPath[str]) -> Response[bytes]:
        if name not in _ASSETS:  # a fixed list: nothing from the request reaches the file system
            raise NotFound(f"no console asset {name[:100]!r}")
        return Response(_read(name), media_type=_ASSETS[name], headers=_HEADERS)

    return [console_page, console_asset]
