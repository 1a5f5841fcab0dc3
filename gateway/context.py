"""Everything a request handler needs, built once by ``create_app`` and passed in (never imported).

Who the caller is comes from the authentication middleware (``gateway/auth/middleware.py``),
what it may do from the route's guard (``gateway/auth/guards.py``); handlers read both
from the request, never from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.auth.tokens import TokenVerifier
    from gateway.executor import DatabaseExecutor
    from gateway.pagination import CursorCodec
    from gateway.readiness import Readiness
    from gateway.streaming import ExportBudget
    from legacy_adapters.mapping.model import Mapping
    from legacy_adapters.migration.routing import RoutedReader
    from legacy_adapters.migration.shadow import MigrationStats, ShadowComparer
    from legacy_adapters.query.resource import Resource
    from sync.state.audit import AuditLog
    from sync.state.idempotency import IdempotencyStore

__all__ = ("GatewayContext",)


@dataclass(frozen=True, slots=True)
class GatewayContext:
    mapping: Mapping
    versions: dict[str, dict[str, Resource]]
    reader: RoutedReader
    """Reads every resource from the database its migration phase names (``legacy_adapters/migration``)."""
    cursors: CursorCodec
    verifier: TokenVerifier | None
    audit: AuditLog
    idempotency: IdempotencyStore
    executor: DatabaseExecutor
    exports: ExportBudget
    readiness: Readiness
    migration_stats: MigrationStats | None = None
    shadow: ShadowComparer | None = None
    identity_claims: frozenset[str] = frozenset()
    """Claims some row filter binds: with issuer, subject and scopes they make an idempotency key's owner."""
