"""Everything a request handler needs, built once by ``create_app`` and passed in (never imported)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
import structlog

from gateway.auth.principal import ANONYMOUS, Principal
from gateway.exceptions import Unauthorized

if TYPE_CHECKING:
    from litestar import Request

    from gateway.auth.tokens import TokenVerifier
    from gateway.executor import DatabaseExecutor
    from gateway.pagination import CursorCodec
    from gateway.readiness import Readiness
    from gateway.streaming import ExportBudget
    from legacy_adapters.mapping.model import Mapping
    from legacy_adapters.query.resource import Resource
    from legacy_adapters.reader import Reader
    from sync.state.audit import AuditLog
    from sync.state.idempotency import IdempotencyStore

__all__ = ("GatewayContext",)

log = structlog.get_logger("bridgehead.auth")


@dataclass(frozen=True, slots=True)
class GatewayContext:
    mapping: Mapping
    versions: dict[str, dict[str, Resource]]
    reader: Reader
    cursors: CursorCodec
    verifier: TokenVerifier | None
    audit: AuditLog
    idempotency: IdempotencyStore
    executor: DatabaseExecutor
    exports: ExportBudget
    readiness: Readiness

    def authenticate(self, request: Request[Any, Any, Any]) -> Principal:
        """The caller: anonymous without a token, else the verified token's principal (or 401)."""
        header = request.headers.get("authorization")
        if not header:
            return ANONYMOUS
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            self._refuse(request, "the Authorization header must be 'Bearer <token>'", None)
        if self.verifier is None:
            self._refuse(request, "this gateway accepts no tokens (no auth configured)", None)
        try:
            return self.verifier.verify(token)  # type: ignore[union-attr]
        except Unauthorized as exc:
            self._refuse(request, exc.detail, token)
            raise  # unreachable: _refuse raises

    @staticmethod
    def _refuse(request: Request[Any, Any, Any], reason: str, token: str | None) -> None:
        claimed = None
        if token:
            try:  # for the log only: who the token claims to be, never the token itself
                claimed = jwt.decode(token, options={"verify_signature": False}).get("sub")
            except jwt.PyJWTError:
                claimed = None
        log.warning("authentication refused", reason=reason, claimed_subject=claimed, path=request.url.path)
        raise Unauthorized(reason)
