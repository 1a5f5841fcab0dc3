"""``GET /health``: the plain status for anyone; pool, exports, state store and sync lag for an admin.

Public (``PUBLIC_PATHS``) so a load balancer needs no token; the handler itself checks a token
when one is sent, through the same ``authenticate`` the middleware uses. A bad or non-admin token
gets the plain status, as no token does: nothing but a verified admin sees the details, and the
details hold counts and ages only (never a URL, host name, user or secret).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from litestar import Request, get

from gateway.auth.middleware import authenticate
from gateway.auth.principal import ADMIN_SCOPE
from gateway.exceptions import Unauthorized
from gateway.metrics import DB_WAITING
from gateway.readiness import UNGATED
from sync.state.utc import utcnow

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from gateway.context import GatewayContext

__all__ = ("health_handlers",)


def health_handlers(ctx: GatewayContext) -> list[HTTPRouteHandler]:
    state_db = ctx.audit.db

    @get("/health", include_in_schema=False, opt=UNGATED)
    async def health(request: Request[Any, Any, Any]) -> dict[str, Any]:
        ready = ctx.readiness.checked  # the mapping is loaded and matched the database
        body: dict[str, Any] = {"status": "ok" if ready else "waiting_for_database"}
        try:
            principal = await authenticate(request.headers.get("authorization"), ctx.verifier, request.url.path)
        except Unauthorized:
            return body
        if ADMIN_SCOPE not in principal.scopes:
            return body
        body["details"] = await ctx.executor.run(_details, ctx, state_db, ready, deadline_s=5.0)
        return body

    return [health]


def _details(ctx: GatewayContext, state_db: Any, ready: bool) -> dict[str, Any]:
    pool = ctx.readiness.database.engine.pool
    details: dict[str, Any] = {
        "database": {
            "ready": ready,
            "pool_size": getattr(pool, "size", lambda: None)(),
            "in_use": getattr(pool, "checkedout", lambda: None)(),
            "waiting": int(DB_WAITING._value.get()),  # this process's own queue
        },
        "exports": {"running": ctx.exports.running, "slots": ctx.exports.slots},
    }
    started = time.perf_counter()
    try:
        with state_db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        details["state_store"] = {"reachable": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
    except sa.exc.SQLAlchemyError as exc:
        details["state_store"] = {"reachable": False, "error": type(exc).__name__}
        return details
    details["sync"] = _sync_lag(ctx, state_db)
    return details


def _sync_lag(ctx: GatewayContext, state_db: Any) -> dict[str, Any]:
    """Per sync: records waiting, dead letters, and the age of the oldest undelivered change."""
    names = list((ctx.mapping.sync or {}).get("syncs", {}) or {})
    if not names:
        return {}
    from sync.state.sync_store import SyncStore

    store = SyncStore(state_db)
    now = utcnow()
    found: dict[str, Any] = {}
    for name in names:
        oldest = store.oldest_pending_at(name)
        found[name] = {
            "outbox": store.pending(name),
            "dead_letters": store.dlq_count(name),
            "lag_s": round(max(0.0, (now - oldest).total_seconds()), 1) if oldest else 0.0,
        }
    return found
