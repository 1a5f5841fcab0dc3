"""CORS and rate limits from the mapping's ``api`` section.

Rate limits are fixed windows counted in ``gateway.rate_limit``: in memory in a single process,
in a memory-mapped file beside the state store under ``serve --workers N`` on one host (every
worker draws on one budget, exactly), in Redis when ``api.rate_limit.redis_url`` is set (every
process and host). The limit per client address is checked before authentication, the one per
token identity after it; the fast path (``gateway.fast_reads``) checks both itself and records
each verdict in the scope, so a request it hands to Litestar is never counted twice. A refused
request is a 429 problem+json with ``Retry-After`` and the ``RateLimit-*`` headers (IETF draft);
every limited answer carries the ``RateLimit-*`` headers of its tightest limit.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware

from gateway.exceptions import GatewayError
from gateway.rate_limit import Limit, MemoryCounters, RedisCounters, SharedFileCounters, Verdict
from legacy_adapters.mapping.model import RATE_UNIT_SECONDS, parse_rate

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from gateway.rate_limit import Counters
    from legacy_adapters.mapping.model import ApiConfig

__all__ = (
    "EXEMPT_PATHS",
    "RATE_LIMIT_DIR_ENV",
    "VERDICTS",
    "RateLimited",
    "RateLimits",
    "cors_config",
    "counted",
    "refusal",
)

RATE_LIMIT_DIR_ENV = "BRIDGEHEAD_RATE_LIMIT_DIR"
"""Set by ``serve --workers N``: the folder its workers keep their shared counters in."""
# Probes and documentation are never limited: a load balancer must always see readiness.
EXEMPT_PATHS = ("^/health/", "^/docs", "^/openapi/", "^/metrics$")
_EXEMPT = re.compile("|".join(EXEMPT_PATHS))
VERDICTS = "bridgehead.rate_limits"
"""Scope state key: each limit's verdict for this request, by label, once it has been counted."""
PER_ADDRESS, PER_SUBJECT = "per client address", "per token identity"


class RateLimited(GatewayError):
    status_code = 429
    slug = "rate-limited"
    title = "Too many requests"


def refusal(verdict: Verdict, unit: str) -> RateLimited:
    return RateLimited(
        f"more than {verdict.limit} requests per {unit} ({verdict.label}); retry after {verdict.reset_s} s",
        headers=verdict.headers(),
    )


def tightest(scope: Scope) -> Verdict | None:
    """The counted verdict with the fewest requests left: the one a client must heed."""
    counted = [v for v in scope.get("state", {}).get(VERDICTS, {}).values() if v is not None]
    return min(counted, key=lambda v: (v.remaining, -v.reset_s)) if counted else None


async def counted(limit: Limit, scope: Scope) -> Verdict | None:
    """``limit``'s verdict for this request: counted now, or the one counted earlier (the fast path)."""
    verdicts = scope["state"].setdefault(VERDICTS, {})
    if limit.label in verdicts:
        return verdicts[limit.label]  # type: ignore[no-any-return]
    verdict = verdicts[limit.label] = await limit.check(scope)
    return verdict


class RateLimitMiddleware:
    """ASGI middleware: one limit, a 429 past it, the ``RateLimit-*`` headers on the answer."""

    def __init__(self, app: ASGIApp, limit: Limit) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or _EXEMPT.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        verdict = await counted(self.limit, scope)
        if verdict is None:
            await self.app(scope, receive, send)
            return
        if not verdict.allowed:
            raise refusal(verdict, self.limit.unit)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                best = tightest(scope)
                if best is not None and "ratelimit-limit" not in headers:
                    for name, value in best.headers().items():
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "127.0.0.1"


def _subject(scope: Scope) -> str | None:
    user = scope.get("user")
    subject = getattr(user, "subject", None)
    if subject is None:
        return None
    return f"{getattr(user, 'claims', {}).get('iss')}|{subject}"


class RateLimits:
    """``api.rate_limit`` built: the limits in the order they are checked, their middleware, their counters."""

    def __init__(self, api: ApiConfig) -> None:
        spec = api.rate_limit
        self.limits: tuple[Limit, ...] = ()
        self.before_auth: list[DefineMiddleware] = []
        self.after_auth: list[DefineMiddleware] = []
        if spec is None or (spec.per_ip is None and spec.per_subject is None):
            self.counters: Counters | None = None
            return
        self.counters = _counters(spec.redis_url)
        if spec.per_ip is not None:
            self.limits += (_limit(spec.per_ip, PER_ADDRESS, _address, self.counters),)
            self.before_auth.append(DefineMiddleware(RateLimitMiddleware, limit=self.limits[-1]))
        if spec.per_subject is not None:
            self.limits += (_limit(spec.per_subject, PER_SUBJECT, _subject, self.counters),)
            self.after_auth.append(DefineMiddleware(RateLimitMiddleware, limit=self.limits[-1]))

    async def close(self) -> None:
        if self.counters is not None:
            await self.counters.close()


def _limit(rate: str, label: str, identify: Any, counters: Counters) -> Limit:
    parsed = parse_rate(rate)
    assert parsed is not None  # the mapping was validated
    count, unit = parsed
    return Limit(count, RATE_UNIT_SECONDS[unit], unit, label, identify, counters)


def _counters(redis_url: str | None) -> Counters:
    if redis_url:
        return RedisCounters(redis_url)
    folder = os.environ.get(RATE_LIMIT_DIR_ENV)
    if folder:  # set by `serve --workers N` for its workers: one host, one shared file
        return SharedFileCounters(Path(folder))
    return MemoryCounters()


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
