"""``Idempotency-Key`` on POST and actions: one write per key, the first response replayed to retries.

The key is scoped to the token's subject, so two clients cannot collide or read
each other's responses. The same key with a different request is refused (422);
a duplicate arriving while the first is still running waits for its response.
Server-side failures release the key, so the client's retry can do the work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from litestar import Response

from gateway.exceptions import Conflict, GatewayError, Unprocessable
from legacy_adapters.exceptions import LegacyError
from sync.state.idempotency import StoredResponse

if TYPE_CHECKING:
    from litestar import Request

    from gateway.auth.principal import Principal
    from gateway.context import GatewayContext

__all__ = ("with_idempotency",)

_MAX_KEY = 255
_REPLAYED = "Idempotent-Replayed"


class KeyReused(Unprocessable):
    slug = "idempotency-key-reused"
    title = "Idempotency key reused"


def with_idempotency(
    ctx: GatewayContext,
    request: Request[Any, Any, Any],
    principal: Principal,
    body: bytes,
    run: Callable[[], Response[Any]],
) -> Response[Any]:
    """Run ``run`` once per (subject, key); replay its stored response to every retry."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return run()
    if not key or len(key) > _MAX_KEY:
        raise Unprocessable(f"Idempotency-Key must be 1 to {_MAX_KEY} characters")
    owner = principal.subject or "anonymous"
    fingerprint = hashlib.sha256(b"\0".join([request.method.encode(), request.url.path.encode(), body])).hexdigest()
    store = ctx.idempotency
    claim = store.claim(owner, key, fingerprint)
    if claim.outcome == "pending":
        claim = store.wait(owner, key, fingerprint)
    if claim.outcome == "mismatch":
        raise KeyReused("this Idempotency-Key was used for a different request; use a new key")
    if claim.outcome == "replay":
        assert claim.response is not None
        stored = claim.response
        headers = {**stored.headers, _REPLAYED: "true"}
        return Response(stored.body, status_code=stored.status, headers=headers, media_type=headers.get("content-type"))
    if claim.outcome == "pending":
        raise Conflict(
            "a request with this Idempotency-Key is still running; retry shortly", headers={"Retry-After": "1"}
        )
    try:
        response = run()
    except (GatewayError, LegacyError) as exc:
        status = getattr(exc, "status_code", 500)
        if isinstance(exc, GatewayError) and 400 <= status < 500:
            _store_error(ctx, request, owner, key, exc)
        else:
            store.release(owner, key)
        raise
    except BaseException:
        store.release(owner, key)
        raise
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("etag", "location")}
    headers["content-type"] = response.media_type or "application/json"
    content = response.content if isinstance(response.content, bytes) else b""
    store.complete(owner, key, StoredResponse(response.status_code or 200, headers, content))  # Response makes None 200
    return response


def _store_error(ctx: GatewayContext, request: Request[Any, Any, Any], owner: str, key: str, exc: GatewayError) -> None:
    # A client error is the answer to this request: a retry with the same key gets the same answer.
    from gateway.problems import problem_response

    rendered = problem_response(exc, request)
    headers = {"content-type": "application/problem+json", **exc.headers}
    ctx.idempotency.complete(owner, key, StoredResponse(exc.status_code, headers, bytes(rendered.content)))
