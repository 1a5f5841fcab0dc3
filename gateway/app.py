"""``create_app(mapping)``: the Litestar application for a validated mapping. No globals."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
from litestar import Litestar
from litestar.datastructures import State
from litestar.exceptions import MissingDependencyException
from litestar.middleware import DefineMiddleware
from litestar.plugins.core import MsgspecDIPlugin

from gateway.admin import admin_handlers
from gateway.auth.middleware import BearerAuthentication
from gateway.auth.tokens import TokenVerifier
from gateway.console import RequestCounter, SyncConsole, console_api_handlers, console_page_handlers
from gateway.context import GatewayContext
from gateway.docs import docs_handlers
from gateway.executor import DatabaseExecutor
from gateway.fast_reads import FastReads
from gateway.health import health_handlers
from gateway.idempotency import identity_claims
from gateway.logging import drain_logs
from gateway.mcp import McpEndpoint
from gateway.metrics import (
    InProgressMiddleware,
    count_response,
    instrument_engine,
    metrics_handlers,
    observe_statement,
)
from gateway.migration import count_migration, migration_handlers
from gateway.ops import ops_handlers
from gateway.pagination import CursorCodec
from gateway.params import check_query_names
from gateway.problems import exception_handlers
from gateway.protection import RateLimits, cors_config
from gateway.readiness import Readiness
from gateway.request_id import RequestIdMiddleware, add_request_id_header
from gateway.streaming import ExportBudget
from gateway.sync_metrics import sync_collector
from gateway.versions import lifecycle_headers, resource_reads, version_routers
from gateway.webhooks import build_webhooks
from gateway.wellknown import wellknown_handlers
from legacy_adapters.database import Database
from legacy_adapters.migration.routing import RoutedReader, open_databases
from legacy_adapters.migration.shadow import MigrationStats, ShadowComparer
from legacy_adapters.query.resource import bind_version
from legacy_adapters.query.unique import mark_unique_keys
from sync.state import StateDatabase
from sync.state.audit import AuditLog
from sync.state.idempotency import IdempotencyStore

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import Mapping

__all__ = ("create_app",)


class _Gateway(Litestar):
    """Litestar without the pydantic plugins it adds by default whenever pydantic is installed.

    No route takes or returns a pydantic model (bodies are msgspec and bytes; ``/mcp`` is a
    raw ASGI route whose SDK brings its own pydantic when first called), and importing the
    plugins loaded pydantic and pydantic-core into every worker: ~9 MB of RSS at rest.
    The rest is Litestar's own default list.
    """

    @staticmethod
    def _get_default_plugins(plugins: list[Any]) -> list[Any]:
        plugins.append(MsgspecDIPlugin())
        with contextlib.suppress(MissingDependencyException):
            from litestar.plugins.attrs import AttrsSchemaPlugin

            if not any(isinstance(plugin, AttrsSchemaPlugin) for plugin in plugins):
                plugins.append(AttrsSchemaPlugin())
        return plugins


def create_app(
    mapping: Mapping,
    *,
    database: Database | None = None,
    http_client: httpx.Client | None = None,
    state: StateDatabase | None = None,
    cursor_secret: bytes | None = None,
    await_database: bool = False,
    on_mismatch: Callable[[str], None] | None = None,
    sync_http: httpx.Client | None = None,
    mapping_path: str | None = None,
) -> Litestar:
    """Build the gateway for ``mapping``.

    Args:
        mapping: a validated mapping (``legacy_adapters.load_mapping``).
        database: the legacy database; opened from ``mapping.database`` when omitted.
        http_client: used to fetch the JWKS; a plain client when omitted and a JWKS is configured.
        state: the state store (idempotency keys, audit); opened from ``mapping.state`` when omitted.
        cursor_secret: signs pagination cursors when ``api.cursor_secret`` is unset; processes serving
            one API must share it (``serve --workers N`` draws one for its workers). Random when omitted.
        await_database: the mapping has not been checked against the database yet (it was down):
            answer 503 on data routes until it answers and matches (``gateway.readiness``).
        on_mismatch: called with the findings when that late check fails (``serve`` stops).
        sync_http: the client the console's runs (run now, approve) reach the destinations with;
            a plain client, made on first use, when omitted.
        mapping_path: the mapping file, named in the console's runbook pages (commands, credentials).
    """
    database = database or Database(mapping.database)
    databases = open_databases(mapping, database)
    versions = {name: bind_version(mapping, name) for name in mapping.versions}
    mark_unique_keys(
        (r for resources in versions.values() for r in resources.values()),
        lambda r: databases.get(r.spec.database, database),
    )
    stats = MigrationStats(listeners=[count_migration])
    shadow = ShadowComparer(stats)
    verifier = None
    if mapping.auth is not None:
        if mapping.auth.jwks_url and http_client is None:
            http_client = httpx.Client(timeout=5.0)
        verifier = TokenVerifier(mapping.auth, http_client)
    if state is None:
        state = StateDatabase(mapping.state.url)
    state.migrate()
    if mapping.api.cursor_secret:
        secret = mapping.api.cursor_secret.encode()
    else:
        secret = cursor_secret or secrets.token_bytes(32)
    ctx = GatewayContext(
        mapping=mapping,
        versions=versions,
        reader=(reader := RoutedReader(mapping, databases, versions, shadow)),
        cursors=CursorCodec(secret),
        verifier=verifier,
        audit=AuditLog(state),
        idempotency=IdempotencyStore(state, mapping.api.idempotency_ttl_s, mapping.api.idempotency_lease_s),
        executor=(executor := DatabaseExecutor(mapping.database.pool_size, mapping.database.request_deadline_s)),
        exports=(
            exports := ExportBudget(
                mapping.database.export_pool_size, mapping.api.export_idle_timeout_s, mapping.api.exports_per_subject
            )
        ),
        readiness=(readiness := Readiness(database, mapping, checked=not await_database, on_mismatch=on_mismatch)),
        migration_stats=stats,
        shadow=shadow,
        identity_claims=identity_claims(mapping),
    )
    instrument_engine(database.engine)
    database.observe_statements(observe_statement)
    syncs = SyncConsole(mapping, database, state, sync_http, mapping_path)
    requests = RequestCounter(state)
    hooks, hook_worker = build_webhooks(mapping, ctx.versions, database, state, ctx.audit)
    # Limits per client address run before authentication; per token identity, after it.
    limits = RateLimits(mapping.api)
    # AI agents: /mcp answers each tool call with the REST route it stands for (gateway/mcp).
    mcp = McpEndpoint(ctx) if mapping.mcp.enabled else None
    before_send: list[Any] = [add_request_id_header, count_response, requests.count]
    if (lifecycle := lifecycle_headers(mapping, ctx.versions)) is not None:
        before_send.append(lifecycle)
    reads = resource_reads(ctx)
    cors = cors_config(mapping.api)
    app = _Gateway(
        route_handlers=[
            *version_routers(ctx, reads),
            *ops_handlers(ctx),
            *health_handlers(ctx),
            *migration_handlers(ctx),
            *docs_handlers(ctx),
            *admin_handlers(ctx),
            *console_page_handlers(mapping),
            *console_api_handlers(ctx, syncs, requests),
            *metrics_handlers(sync_collector(mapping, state)),
            *wellknown_handlers(ctx),
            *(mcp.handlers() if mcp else []),
            *hooks,
        ],
        exception_handlers=exception_handlers,
        # Authentication once, for every route, before guards and body parsing (auth/middleware.py);
        # limits per client address before it, per token identity after it (gateway/protection.py).
        middleware=[
            RequestIdMiddleware,
            InProgressMiddleware,
            *limits.before_auth,
            DefineMiddleware(BearerAuthentication, verifier=verifier),
            *limits.after_auth,
        ],
        guards=[readiness.guard],
        # After the guards: a route that names its query parameters refuses any other (gateway/params.py).
        before_request=check_query_names,
        cors_config=cors,
        openapi_config=None,
        before_send=before_send,
        on_startup=[readiness.start, requests.start, *([hook_worker.start] if hook_worker else [])],
        lifespan=[mcp.lifespan] if mcp else [],
        on_shutdown=[
            readiness.stop,
            requests.stop,
            syncs.close,
            *([hook_worker.stop] if hook_worker else []),
            executor.shutdown,
            limits.close,
            exports.shutdown,
            shadow.stop,
            reader.dispose,
            database.dispose,
            state.dispose,
            drain_logs,  # last: uvicorn re-raises SIGTERM after shutdown, which skips atexit
        ],
        state=State({"ctx": ctx}),
        debug=False,
    )
    # The hot reads' success path without Litestar's middleware, guards and request objects
    # (gateway/fast_reads.py); it counts the rate limits itself, once, as the middleware would.
    app.asgi_handler = FastReads(app.asgi_handler, ctx, reads, app.routes, cors=cors is not None, limits=limits.limits)
    return app
