"""``Idempotency-Key`` on POST and actions: one write per key, the first response replayed to retries.

A key belongs to the caller's whole identity: issuer, subject, scopes and every
claim a row filter binds. Two portal customers that share one ``sub`` therefore
hold different keys, and a replay never shows a caller a response its own token
could not have read. The request's fingerprint is its method, path, query string
and body; the same key with a different request is refused (422).

A duplicate arriving while the first request runs waits for its answer on the
event loop (never asleep in a database worker), for at most ``_WAIT_S``. The
key's lifecycle and what each state answers is in ``sync/state/idempotency.py``;
here the write is sealed inside its legacy transaction (``Attempt.seal``) so that
after the commit the key can never be released for a second run.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import sqlalchemy as sa
import structlog
from litestar import Response

from gateway.exceptions import Conflict, GatewayError, ServiceUnavailable, Unprocessable
from sync.state.idempotency import LeaseLost, StoredResponse

if TYPE_CHECKING:
    from litestar import Request

    from gateway.auth.principal import Principal
    from gateway.context import GatewayContext
    from legacy_adapters.mapping.model import Mapping
    from sync.state.idempotency import IdempotencyStore

__all__ = ("Attempt", "identity_claims", "owner_of", "request_fingerprint", "with_idempotency")

log = structlog.get_logger("bridgehead.idempotency")

T = TypeVar("T")
_MAX_KEY = 255
_REPLAYED = "Idempotent-Replayed"
_WAIT_S = 10.0


class KeyReused(Unprocessable):
    slug = "idempotency-key-reused"
    title = "Idempotency key reused"


class OutcomeUnknown(Conflict):
    slug = "idempotency-outcome-unknown"
    title = "Outcome of the first request unknown"


def identity_claims(mapping: Mapping) -> frozenset[str]:
    """Every claim some row filter of the mapping binds: part of who a caller is."""
    return frozenset(
        claim.removeprefix("claims.")
        for version in mapping.versions.values()
        for resource in version.resources.values()
        for claim in (resource.row_filter or {}).values()
    )


def owner_of(principal: Principal, claims: frozenset[str]) -> str:
    """The key's owner: a digest of everything that decides what this caller may see."""
    identity = {
        "iss": principal.claims.get("iss"),
        "sub": principal.subject,
        "scopes": sorted(principal.scopes),
        "claims": {name: principal.claims.get(name) for name in sorted(claims)},
    }
    return hashlib.sha256(msgspec.json.encode(identity)).hexdigest()


def request_fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """What makes two requests "the same" for a key: method, path, query string (``?partial=true``), body."""
    return hashlib.sha256(b"\0".join([method.encode(), path.encode(), query, body])).hexdigest()


class Attempt:
    """One request's hold on its key (or none): the write calls ``seal`` just before it commits."""

    def __init__(self, store: IdempotencyStore | None, owner: str, key: str, token: str, fingerprint: str) -> None:
        self.store, self.owner, self.key, self.token, self.fingerprint = store, owner, key, token, fingerprint
        self.sealed = False

    def seal(self, work: Callable[[sa.Connection], T]) -> Callable[[sa.Connection], T]:
        """``work`` followed by the seal, as one legacy transaction's body: no seal, no commit."""

        def sealed(conn: sa.Connection) -> T:
            result = work(conn)
            if self.store is not None:
                try:
                    self.store.seal(self.owner, self.key, self.token)
                except LeaseLost:
                    raise Conflict(
                        "this request ran past its Idempotency-Key lease and another took the key over; "
                        "nothing was written",
                        headers={"Retry-After": "1"},
                    ) from None
                except sa.exc.SQLAlchemyError:
                    raise ServiceUnavailable("the state store is unavailable; nothing was written") from None
            self.sealed = True
            return result

        return sealed


async def with_idempotency(
    ctx: GatewayContext,
    request: Request[Any, Any, Any],
    principal: Principal,
    body: bytes,
    run: Callable[[Attempt], Response[Any]],
) -> Response[Any]:
    """Run ``run`` once per (caller, key) in the database pool; replay its stored response to every retry."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return await ctx.executor.run(run, Attempt(None, "", "", "", ""))  # seal() then runs the work alone
    if not key or len(key) > _MAX_KEY:
        raise Unprocessable(f"Idempotency-Key must be 1 to {_MAX_KEY} characters")
    owner = owner_of(principal, ctx.identity_claims)
    fingerprint = request_fingerprint(request.method, request.url.path, request.scope.get("query_string", b""), body)
    store = ctx.idempotency
    deadline = time.monotonic() + _WAIT_S
    delay = 0.02
    while True:
        try:
            claim = await ctx.executor.run(store.claim, owner, key, fingerprint)
        except sa.exc.SQLAlchemyError:
            raise ServiceUnavailable(
                "the state store is unavailable; nothing was written", headers={"Retry-After": "5"}
            ) from None
        if claim.outcome != "pending" or time.monotonic() > deadline:
            break
        await asyncio.sleep(delay)  # on the event loop: the database workers stay free meanwhile
        delay = min(delay * 2, 0.25)
    if claim.outcome == "mismatch":
        raise KeyReused("this Idempotency-Key was used for a different request; use a new key")
    if claim.outcome == "replay":
        assert claim.response is not None
        stored = claim.response
        headers = {**stored.headers, _REPLAYED: "true"}
        return Response(stored.body, status_code=stored.status, headers=headers, media_type=headers.get("content-type"))
    if claim.outcome == "unknown":
        raise OutcomeUnknown(
            "the first request with this Idempotency-Key stopped between writing and recording its answer, so "
            "it may have been written; check the resource, and use a new key to write again"
        )
    if claim.outcome == "pending":
        raise Conflict(
            "a request with this Idempotency-Key is still running; retry shortly", headers={"Retry-After": "1"}
        )
    assert claim.token is not None
    attempt = Attempt(store, owner, key, claim.token, fingerprint)
    return await ctx.executor.run(_run_once, request, attempt, run)


def _run_once(
    request: Request[Any, Any, Any], attempt: Attempt, run: Callable[[Attempt], Response[Any]]
) -> Response[Any]:
    store = attempt.store
    assert store is not None
    try:
        response = run(attempt)
    except BaseException as exc:
        if attempt.sealed:
            # Committed, then failed: the key stays sealed, so no retry can write a second time.
            log.error("keyed write failed after its commit", key=attempt.key, error=type(exc).__name__)
            raise
        status = getattr(exc, "status_code", 500)
        if isinstance(exc, GatewayError) and 400 <= status < 500:
            # A client error is the answer to this request: a retry with the same key gets the same answer.
            _remember_error(request, attempt, exc)
        else:
            _release(attempt)
        raise
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("etag", "location")}
    headers["content-type"] = response.media_type or "application/json"
    content = response.content if isinstance(response.content, bytes) else b""
    stored = StoredResponse(response.status_code or 200, headers, content)  # Response makes None 200
    store.complete(attempt.owner, attempt.key, attempt.token, attempt.fingerprint, stored)
    return response


def _release(attempt: Attempt) -> None:
    assert attempt.store is not None
    try:
        attempt.store.release(attempt.owner, attempt.key, attempt.token)
    except sa.exc.SQLAlchemyError:
        # Nothing was written; the claim's short lease frees the key for the retry.
        log.warning("idempotency key not released; its lease will expire", key=attempt.key)


def _remember_error(request: Request[Any, Any, Any], attempt: Attempt, exc: GatewayError) -> None:
    from gateway.problems import problem_response

    assert attempt.store is not None
    rendered = problem_response(exc, request)
    headers = {"content-type": "application/problem+json", **exc.headers}
    stored = StoredResponse(exc.status_code, headers, bytes(rendered.content))
    attempt.store.complete(attempt.owner, attempt.key, attempt.token, attempt.fingerprint, stored)
