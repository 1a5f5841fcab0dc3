"""Who is calling, decided once per request by Litestar's authentication middleware.

The middleware turns the ``Authorization`` header into a ``Principal`` at
``request.user`` before any handler, guard or body parser runs: no token is the
anonymous principal (guards decide whether a route accepts it), a bad token is a
401 at once. Verification that may fetch the JWKS runs in a worker thread of its
own, never on the event loop and never in the database pool; a token verified
before is answered from the verifier's cache without leaving the loop.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NoReturn

import anyio.to_thread
import jwt
import structlog
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from gateway.auth.principal import ANONYMOUS, Principal
from gateway.exceptions import Unauthorized

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.types import ASGIApp

    from gateway.auth.tokens import TokenVerifier

__all__ = ("PUBLIC_PATHS", "BearerAuthentication", "authenticate", "is_public", "known_principal", "principal_of")

log = structlog.get_logger("bridgehead.auth")

PUBLIC_PATHS = (
    "^/health(/|$)",  # /health checks an admin token itself (gateway/health.py)
    "^/docs(/|$)",
    "^/openapi/",
    "^/problems/",
    "^/metrics$",
    "^/webhooks/",
    "^/\\.well-known/",
    "^/admin/?$",
    "^/admin/assets/",
)
"""Routes that never look at a token: probes, the documentation and its assets, the problem type
pages, metrics (scraped from the operators' network), webhooks (signed with a shared secret
instead, checked by their handler over the raw body), the OAuth protected-resource metadata
(RFC 9728) a client reads to find out where tokens come from, and the console's page and assets
(they hold no data; its script calls the admin API with the operator's token). ``/mcp`` is
authenticated here like every data route; its guard answers a missing token with the same 401
(``gateway/mcp``)."""
_PUBLIC = re.compile("|".join(PUBLIC_PATHS))


def is_public(path: str) -> bool:
    """Whether ``path`` is one of the routes authentication skips (``PUBLIC_PATHS``)."""
    return _PUBLIC.match(path) is not None


class BearerAuthentication(AbstractAuthenticationMiddleware):
    """``Authorization: Bearer <jwt>`` to a ``Principal``; no header is ``ANONYMOUS``."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier | None) -> None:
        # OPTIONS is answered by Litestar itself; HEAD is a GET and is authenticated like one.
        super().__init__(app, exclude=list(PUBLIC_PATHS), exclude_http_methods=["OPTIONS"])
        self.verifier = verifier

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        # The scope's own path and header, not connection.url and .headers: each builds an object per request.
        header = next((v.decode("latin-1") for k, v in connection.scope["headers"] if k == b"authorization"), None)
        principal = await authenticate(header, self.verifier, connection.scope["path"])
        # The token itself is never kept on the request: nothing downstream needs it, logs must not see it.
        return AuthenticationResult(user=principal, auth=None)


async def authenticate(header: str | None, verifier: TokenVerifier | None, path: str) -> Principal:
    """The principal an ``Authorization`` header stands for (``ANONYMOUS`` without one).

    The one check every caller goes through: HTTP requests here, ``bridgehead mcp`` for its token.

    Raises:
        Unauthorized: a malformed header or a token that does not verify (logged with the reason).
    """
    if not header:
        return ANONYMOUS
    token = _bearer(header)
    if token is None:
        _refuse(path, "the Authorization header must be 'Bearer <token>'", None)
    if verifier is None:
        _refuse(path, "this gateway accepts no tokens (no auth configured)", None)
    principal = verifier.cached(token)
    if principal is None:
        try:
            principal = await anyio.to_thread.run_sync(verifier.verify, token)
        except Unauthorized as exc:
            _refuse(path, exc.detail, token)
    return principal


def _bearer(header: str) -> str | None:
    """The token of a ``Bearer <token>`` header; ``None`` for any other shape."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def known_principal(header: str | None, verifier: TokenVerifier | None) -> Principal | None:
    """What ``authenticate`` would answer, when that is known on the loop without a refusal.

    No header is ``ANONYMOUS``; a well-formed token verified before (and still in time) is its
    principal. ``None`` means "ask ``authenticate``": a token to verify, or one it would refuse
    (and log). For ``gateway.fast_reads``, which answers only what needs neither.
    """
    if not header:
        return ANONYMOUS
    token = _bearer(header)
    if token is None or verifier is None:
        return None
    return verifier.cached(token)


def _refuse(path: str, reason: str, token: str | None) -> NoReturn:
    claimed = None
    if token:
        try:  # for the log only: who the token claims to be, never the token itself
            claimed = jwt.decode(token, options={"verify_signature": False}).get("sub")
        except jwt.PyJWTError:
            claimed = None
    log.warning("authentication refused", reason=reason, claimed_subject=claimed, path=path)
    raise Unauthorized(reason)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal the middleware put on this connection; a route it skipped has none (a bug: 500)."""
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise RuntimeError(f"{connection.url.path} was not authenticated (is it in PUBLIC_PATHS?)")
    return user
