"""CORS and rate limits from the mapping's ``api`` section, in Litestar's own terms.

Rate limits use Litestar's ``RateLimitMiddleware`` over a store every worker sees: Redis when
``api.rate_limit.redis_url`` is set (every process and host), files beside the state store
under ``serve --workers N`` on one host, memory in a single process. A refused request is a
429 problem+json with ``Retry-After`` and the ``RateLimit-*`` headers (IETF draft), so a
client knows when to come back. Counting is per fixed window; under bursts arriving at the
same instant on several workers a few requests past the limit may get through (each worker
reads and writes the window's count), which a limit meant to stop a runaway client tolerates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar.config.cors import CORSConfig
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware, get_remote_address
from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore

from gateway.exceptions import GatewayError
from legacy_adapters.mapping.model import parse_rate

if TYPE_CHECKING:
    from litestar import Request
    from litestar.stores.base import Store
    from litestar.types import Receive, Scope, Send

    from legacy_adapters.mapping.model import ApiConfig
    from legacy_adapters.mapping.model import RateLimitConfig as LimitSpec

__all__ = ("EXEMPT_PATHS", "RATE_LIMIT_DIR_ENV", "RateLimited", "cors_config", "rate_limits")

_STORE = "bridgehead_rate_limit"
RATE_LIMIT_DIR_ENV = "BRIDGEHEAD_RATE_LIMIT_DIR"
"""Set by ``serve --workers N``: the folder its workers keep their shared counters in."""
# Probes and documentation are never limited: a load balancer must always see readiness.
EXEMPT_PATHS = ("^/health/", "^/docs", "^/openapi/", "^/metrics$")


class RateLimited(GatewayError):
    status_code = 429
    slug = "rate-limited"
    title = "Too many requests"


class _Limiter(RateLimitMiddleware):
    """Litestar's limiter, answering in our problem+json with ``Retry-After``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except TooManyRequestsException as exc:
            headers = dict(exc.headers or {})
            headers["Retry-After"] = str(max(1, int(headers.get("RateLimit-Reset", "1"))))
            raise RateLimited(
                f"more than {self.max_requests} requests per {self.unit} ({type(self).label}); "
                f"retry after {headers['Retry-After']} s",
                headers=headers,
            ) from None

    label = "limit"


class SubjectLimiter(_Limiter):
    label = "per token identity"


class AddressLimiter(_Limiter):
    label = "per client address"


def _subject(request: Request[Any, Any, Any]) -> str:
    user = request.scope.get("user")
    subject = getattr(user, "subject", None)
    issuer = getattr(user, "claims", {}).get("iss") if user is not None else None
    return f"{issuer}|{subject}"


def _has_subject(request: Request[Any, Any, Any]) -> bool:
    return getattr(request.scope.get("user"), "subject", None) is not None


def rate_limits(api: ApiConfig) -> tuple[list[DefineMiddleware], list[DefineMiddleware], dict[str, Store]]:
    """(middleware before authentication, middleware after it, stores) for ``api.rate_limit``."""
    spec = api.rate_limit
    if spec is None or (spec.per_ip is None and spec.per_subject is None):
        return [], [], {}
    before: list[DefineMiddleware] = []
    after: list[DefineMiddleware] = []
    if spec.per_ip is not None:
        before.append(_middleware(AddressLimiter, spec.per_ip, get_remote_address))
    if spec.per_subject is not None:
        after.append(_middleware(SubjectLimiter, spec.per_subject, _subject, check=_has_subject))
    return before, after, {_STORE: _store(spec)}


def _middleware(cls: type[_Limiter], rate: str, identify: Any, check: Any = None) -> DefineMiddleware:
    parsed = parse_rate(rate)
    assert parsed is not None  # the mapping was validated
    count, unit = parsed
    config = RateLimitConfig(
        rate_limit=(unit, count),
        exclude=list(EXEMPT_PATHS),
        identifier_for_request=identify,
        check_throttle_handler=check,
        middleware_class=cls,
        store=_STORE,
    )
    return DefineMiddleware(cls, config=config)


def _store(spec: LimitSpec) -> Store:
    if spec.redis_url:
        from litestar.stores.redis import RedisStore

        return RedisStore.with_client(url=spec.redis_url, namespace="bridgehead-rate-limit")
    folder = os.environ.get(RATE_LIMIT_DIR_ENV)
    if folder:  # set by `serve --workers N` for its workers: one host, shared files
        return FileStore(Path(folder))
    return MemoryStore()


def cors_config(api: ApiConfig) -> CORSConfig | None:
    """Litestar's CORS handling for ``api.cors``; None keeps the API same-origin only."""
    cors = api.cors
    if cors is None:
        return None
    return CORSConfig(
        allow_origins=cors.allow_origins,
        allow_methods=cors.allow_methods,  # type: ignore[arg-type]
        allow_headers=cors.allow_headers,
        expose_headers=cors.expose_headers,
        allow_credentials=cors.allow_credentials,
        max_age=cors.max_age_s,
    )
