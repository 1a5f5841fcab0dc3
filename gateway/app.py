"""``create_app(mapping)``: the Litestar application for a validated mapping. No globals."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import httpx
from litestar import Litestar
from litestar.datastructures import State

from gateway.admin import admin_handlers
from gateway.auth.tokens import TokenVerifier
from gateway.context import GatewayContext
from gateway.docs import docs_handlers
from gateway.executor import DatabaseExecutor
from gateway.ops import ops_handlers
from gateway.pagination import CursorCodec
from gateway.problems import exception_handlers
from gateway.request_id import RequestIdMiddleware, add_request_id_header
from gateway.versions import deprecation_headers, version_routers
from legacy_adapters.database import Database
from legacy_adapters.query.resource import bind_version
from legacy_adapters.reader import Reader
from sync.state import StateDatabase
from sync.state.audit import AuditLog
from sync.state.idempotency import IdempotencyStore

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import Mapping

__all__ = ("create_app",)


def create_app(
    mapping: Mapping,
    *,
    database: Database | None = None,
    http_client: httpx.Client | None = None,
    state: StateDatabase | None = None,
) -> Litestar:
    """Build the gateway for ``mapping``.

    Args:
        mapping: a validated mapping (``legacy_adapters.load_mapping``).
        database: the legacy database; opened from ``mapping.database`` when omitted.
        http_client: used to fetch the JWKS; a plain client when omitted and a JWKS is configured.
        state: the state store (idempotency keys, audit); opened from ``mapping.state`` when omitted.
    """
    database = database or Database(mapping.database)
    verifier = None
    if mapping.auth is not None:
        if mapping.auth.jwks_url and http_client is None:
            http_client = httpx.Client(timeout=5.0)
        verifier = TokenVerifier(mapping.auth, http_client)
    if state is None:
        state = StateDatabase(mapping.state.url)
    state.create_all()
    secret = mapping.api.cursor_secret.encode() if mapping.api.cursor_secret else secrets.token_bytes(32)
    ctx = GatewayContext(
        mapping=mapping,
        versions={name: bind_version(mapping, name) for name in mapping.versions},
        reader=Reader(database),
        cursors=CursorCodec(secret),
        verifier=verifier,
        audit=AuditLog(state),
        idempotency=IdempotencyStore(state, mapping.api.idempotency_ttl_s),
        executor=(executor := DatabaseExecutor(mapping.database.pool_size)),
    )
    deprecated = {
        name: _deprecation_headers(version.deprecated, version.sunset)
        for name, version in mapping.versions.items()
        if version.deprecated or version.sunset
    }
    before_send: list[Any] = [add_request_id_header]
    if deprecated:
        before_send.append(deprecation_headers(deprecated))
    return Litestar(
        route_handlers=[*version_routers(ctx), *ops_handlers(ctx), *docs_handlers(ctx), *admin_handlers(ctx)],
        exception_handlers=exception_handlers,
        middleware=[RequestIdMiddleware],
        openapi_config=None,
        before_send=before_send,
        on_shutdown=[executor.shutdown, database.dispose, state.dispose],
        state=State({"ctx": ctx}),
        debug=False,
    )


def _deprecation_headers(deprecated: bool, sunset: str | None) -> dict[str, str]:
    headers = {"Deprecation": "true"} if deprecated else {}
    if sunset:
        headers["Sunset"] = sunset
    return headers
