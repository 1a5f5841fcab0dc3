"""RFC 9457 problem details: the one shape every error response takes.

``type`` is a relative URI under ``/problems/``; the gateway serves a short
explanation at each, so a developer who follows it learns what went wrong.

A problem is small whatever the request was: at most ``MAX_LISTED_ERRORS``
entries are listed (``errors_not_listed`` counts the rest) and every text in it
is cut to ``MAX_PROBLEM_TEXT`` characters, so 10,000 unknown parameters or a
100 KB value echoed in a message cannot turn an error into a megabyte reply.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException
from litestar.exceptions import MethodNotAllowedException as LitestarMethodNotAllowed

from gateway.exceptions import GatewayError, MethodNotAllowed, NotFound, Unauthorized, for_status, from_legacy
from gateway.request_id import request_id
from gateway.wellknown import metadata_url
from legacy_adapters.exceptions import LegacyError

__all__ = (
    "MAX_LISTED_ERRORS",
    "MAX_PROBLEM_TEXT",
    "PROBLEM_JSON",
    "PROBLEM_TYPES",
    "Problem",
    "exception_handlers",
    "problem_of",
    "problem_response",
)

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("bridgehead.problems")
MAX_LISTED_ERRORS = 50
MAX_PROBLEM_TEXT = 500


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] = []
    errors_not_listed: int = 0
    """How many more entries ``errors`` would have had past ``MAX_LISTED_ERRORS``."""
    request_id: str | None = None


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_PROBLEM_TEXT:
        return f"{value[: MAX_PROBLEM_TEXT - 30]}… (cut from {len(value)} characters)"
    return value


def _listed(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _cut(v) for k, v in entry.items()} for entry in errors[:MAX_LISTED_ERRORS]]


def problem_of(error: GatewayError, request: Request[Any, Any, Any] | None = None) -> Problem:
    """The problem details of ``error``; ``instance`` and ``request_id`` only when there is a request."""
    return Problem(
        type=f"/problems/{error.slug}",
        title=error.title,
        status=error.status_code,
        detail=_cut(error.detail),
        instance=_cut(request.url.path) if request is not None else None,
        errors=_listed(error.errors),
        errors_not_listed=max(0, len(error.errors) - MAX_LISTED_ERRORS),
        request_id=request_id(request.scope) if request is not None else None,
    )


def problem_response(error: GatewayError, request: Request[Any, Any, Any] | None = None) -> Response[bytes]:
    """Render ``error`` as ``application/problem+json`` with its headers."""
    return Response(
        msgspec.json.encode(problem_of(error, request)),
        status_code=error.status_code,
        media_type=PROBLEM_JSON,
        headers=error.headers,
    )


def _gateway(request: Request[Any, Any, Any], exc: GatewayError) -> Response[bytes]:
    # Only /mcp's challenge grows (versions' answers stay byte for byte what they were: tests/snapshots).
    if isinstance(exc, Unauthorized) and "WWW-Authenticate" in exc.headers and request.url.path == "/mcp":
        ctx = request.app.state.get("ctx")
        if ctx is not None and ctx.mapping.auth is not None:
            exc.headers = {
                **exc.headers,
                "WWW-Authenticate": _with_metadata(exc.headers["WWW-Authenticate"], ctx, request),
            }
    return problem_response(exc, request)


_PLAIN_URL = re.compile(r"^https?://[A-Za-z0-9.:\[\]_~%/-]+$")


def _with_metadata(challenge: str, ctx: Any, request: Request[Any, Any, Any]) -> str:
    """RFC 9728 5.1: the challenge says where the resource's metadata (and so its token issuer) is.

    Put before ``error``: clients read ``error_description`` as the last parameter. A URL built
    from a strange Host header (a quote, a non-ASCII byte) is left out rather than sent broken.
    """
    url = metadata_url(ctx.mapping, request)
    if not _PLAIN_URL.match(url):
        return challenge
    scheme, _, rest = challenge.partition(" ")
    realm, comma, others = rest.partition(", ")
    return (
        f'{scheme} {realm}, resource_metadata="{url}"{comma}{others}'
        if comma
        else f'{challenge}, resource_metadata="{url}"'
    )


def _legacy(request: Request[Any, Any, Any], exc: LegacyError) -> Response[bytes]:
    return problem_response(from_legacy(exc, reading=request.method in ("GET", "HEAD")), request)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if isinstance(exc, NotFoundException):
        return problem_response(NotFound(f"no resource at {request.url.path}"), request)
    if isinstance(exc, LitestarMethodNotAllowed):
        allow = (exc.headers or {}).get("allow", "")
        error: GatewayError = MethodNotAllowed(
            f"{request.method} is not allowed here", headers={"Allow": allow} if allow else {}
        )
        return problem_response(error, request)
    return problem_response(for_status(exc.status_code, exc.detail), request)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # The traceback goes to the log with the request id; the client gets neither it nor any SQL.
    log.exception("unhandled error", path=request.url.path, exc_info=exc)
    return problem_response(GatewayError("an unexpected error occurred; quote the request id"), request)


exception_handlers: dict[type[Exception] | int, Any] = {
    GatewayError: _gateway,
    LegacyError: _legacy,
    HTTPException: _http,
    Exception: _unexpected,
}

PROBLEM_TYPES: dict[str, str] = {
    "invalid-parameter": "A query parameter, path key or body value is not valid; `errors` lists each one.",
    "invalid-token": "The bearer token is missing, malformed, expired, or not signed by a trusted key.",
    "insufficient-scope": "The token is valid but lacks the scope (or claim) this operation needs.",
    "not-found": "No such resource, or no row with that key that this token may see.",
    "method-not-allowed": "The resource does not accept this HTTP method.",
    "not-acceptable": "None of the media types in Accept can be produced.",
    "conflict": "The change conflicts with data already in the database.",
    "invalid-value": "A value cannot be stored in the legacy database; `errors` lists each field.",
    "precondition-failed": "The row changed since the ETag in If-Match was issued; read it again.",
    "payload-too-large": "The request body is larger than the gateway accepts.",
    "too-many-rows": "A bulk request holds more rows than the configured maximum.",
    "unsupported-media-type": "A request body must be JSON: send Content-Type: application/json.",
    "if-match-required": "This API requires If-Match with the row's ETag on PATCH and DELETE.",
    "idempotency-key-reused": "The Idempotency-Key was already used for a different request.",
    "idempotency-outcome-unknown": (
        "The first request with this Idempotency-Key stopped between committing and recording its answer; "
        "it may have been written, so it is never run again. Check the resource; write again with a new key."
    ),
    "database-unavailable": "The legacy database cannot be reached; retry after the Retry-After delay.",
    "database-timeout": "The legacy database did not answer within the statement timeout.",
    "too-many-exports": "Every export slot is busy streaming; retry after the Retry-After delay.",
    "too-many-exports-per-subject": "This caller already streams the most exports one caller may run at once; "
    "let one finish, then retry.",
    "internal-error": "Something failed inside the gateway; the request id finds it in the logs.",
    "rate-limited": "Too many requests in the current window; retry after the Retry-After delay.",
    "invalid-signature": "A webhook's HMAC signature does not match its raw body and the configured secret.",
}
