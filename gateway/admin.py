"""Administrative endpoints (scope ``admin``): the audit trail of writes."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get

from gateway.auth.guards import scope_guard
from gateway.auth.principal import ADMIN_SCOPE
from gateway.exceptions import BadRequest
from gateway.executor import offloaded
from gateway.params import name_errors
from legacy_adapters.query.values import INT64_MAX, check_text, shown

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from gateway.context import GatewayContext

__all__ = ("admin_handlers",)

_FILTERS = ("resource", "subject", "action", "key", "since", "until")


def admin_handlers(ctx: GatewayContext) -> list[HTTPRouteHandler]:
    def audit(request: Request[Any, Any, Any]) -> Response[bytes]:
        filters, limit, after_id = _audit_query(request.query_params)
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


def _audit_query(query: Any) -> tuple[dict[str, str], int, int | None]:
    """The audit list's filters, page size and cursor, each checked; ``BadRequest`` lists every bad one."""
    errors = name_errors(query.multi_items(), (*_FILTERS, "limit", "cursor"), "GET /admin/audit")
    limit = _whole(query.get("limit", "100"), "limit", 1, 1000, errors)
    after_id = _whole(query["cursor"], "cursor", 1, INT64_MAX, errors) if "cursor" in query else None
    filters = {name: query[name] for name in _FILTERS if name in query}
    for name in ("since", "until"):
        if name in filters:
            try:
                filters[name] = _instant(filters[name])
            except ValueError:
                errors.append(
                    {"parameter": name, "detail": f"expected an ISO 8601 date or date-time, got {shown(filters[name])}"}
                )
    for name in ("resource", "subject", "action", "key"):
        if name in filters:
            try:
                check_text(filters[name])
            except ValueError as exc:
                errors.append({"parameter": name, "detail": str(exc)})
    if errors:
        raise BadRequest(
            errors[0]["detail"] if len(errors) == 1 else f"{len(errors)} parameters are invalid", errors=errors
        )
    return filters, limit or 100, after_id


def _whole(raw: str, name: str, low: int, high: int, errors: list[dict[str, str]]) -> int | None:
    try:
        value = int(raw) if len(raw) <= 20 else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        errors.append({"parameter": name, "detail": f"expected a whole number from {low} to {high}, got {shown(raw)}"})
        return None
    return value


def _instant(raw: str) -> str:
    """An ISO date or date-time as the audit trail stores instants (UTC, milliseconds), so text order is time order."""
    if len(raw) > 40:
        raise ValueError(raw)
    moment = dt.datetime.fromisoformat(raw)
    if moment.tzinfo is None:  # a date, or a date-time without offset: UTC, as the trail is kept
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")
