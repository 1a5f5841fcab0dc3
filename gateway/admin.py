"""Administrative endpoints (scope ``admin``): the audit trail of writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get

from gateway.auth.guards import scope_guard
from gateway.auth.principal import ADMIN_SCOPE
from gateway.exceptions import BadRequest
from gateway.executor import offloaded

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from gateway.context import GatewayContext

__all__ = ("admin_handlers",)

_FILTERS = ("resource", "subject", "action", "key", "since", "until")


def admin_handlers(ctx: GatewayContext) -> list[HTTPRouteHandler]:
    def audit(request: Request[Any, Any, Any]) -> Response[bytes]:
        query = request.query_params
        unknown = sorted(set(query) - {*_FILTERS, "limit", "cursor"})
        if unknown:
            raise BadRequest(
                f"unknown parameter {unknown[0]!r} (known: {', '.join((*_FILTERS, 'limit', 'cursor'))})",
                errors=[{"parameter": name, "detail": "unknown parameter"} for name in unknown],
            )
        try:
            limit = int(query.get("limit", "100"))
            after_id = int(query["cursor"]) if "cursor" in query else None
        except ValueError:
            raise BadRequest("limit and cursor are whole numbers", errors=[]) from None
        if not 1 <= limit <= 1000:
            raise BadRequest("limit must be between 1 and 1000", errors=[{"parameter": "limit", "detail": "1..1000"}])
        filters = {name: query[name] for name in _FILTERS if name in query}
        entries = ctx.audit.list(**filters, after_id=after_id, limit=limit)
        body: dict[str, Any] = {"data": entries, "next_cursor": None}
        headers = {}
        if len(entries) == limit:
            body["next_cursor"] = str(entries[-1].id)
            link = urlencode({**filters, "limit": limit, "cursor": body["next_cursor"]})
            headers["Link"] = f'</admin/audit?{link}>; rel="next"'
        return Response(msgspec.json.encode(body), media_type="application/json", headers=headers)

    admin_only = [scope_guard(ADMIN_SCOPE, "the audit trail")]
    return [get("/admin/audit", include_in_schema=False, guards=admin_only)(offloaded(ctx.executor, audit))]
