"""HTTP-facing errors, each carrying its status, and the table that maps legacy errors onto them.

    BridgeheadError
    └── GatewayError                     500 unless a subclass says otherwise
        ├── BadRequest                   400  (errors: one entry per bad parameter)
        ├── Unauthorized                 401  WWW-Authenticate: Bearer error="invalid_token"
        ├── Forbidden                    403  WWW-Authenticate: Bearer error="insufficient_scope"
        ├── NotFound                     404
        ├── MethodNotAllowed             405
        ├── NotAcceptable                406
        ├── Conflict                     409
        ├── PreconditionFailed           412
        ├── PayloadTooLarge              413  (the request body is larger than the server takes)
        │   └── TooManyRows              413  (a bulk request holds more rows than max_bulk)
        ├── UnsupportedMediaType         415
        ├── Unprocessable                422  (errors: one entry per bad field)
        ├── PreconditionRequired         428
        ├── TooManyExports               429  Retry-After: this identity already runs its exports
        ├── ServiceUnavailable           503  Retry-After
        │   └── ExportsBusy              503  Retry-After: every export slot is taken
        └── GatewayTimeout               504

Handlers raise these; ``problems.py`` turns any of them (and any ``LegacyError``
through ``from_legacy``) into one RFC 9457 response. No handler builds an error
response by hand.
"""

from __future__ import annotations

from typing import Any

from legacy_adapters.exceptions import (
    BridgeheadError,
    DatabaseError,
    DatabaseUnavailable,
    IntegrityConflict,
    KeyNotUnique,
    LegacyError,
    LoginRefused,
    QueryError,
    SchemaDrift,
    StatementTimeout,
    TransactionConflict,
    TransformError,
    ValueRefused,
)

__all__ = (
    "BadRequest",
    "Conflict",
    "ExportsBusy",
    "Forbidden",
    "GatewayError",
    "GatewayTimeout",
    "KeyNotUniqueError",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PreconditionRequired",
    "ServiceUnavailable",
    "TooManyRows",
    "Unauthorized",
    "Unprocessable",
    "UnsupportedMediaType",
    "for_status",
    "from_legacy",
)


class GatewayError(BridgeheadError):
    status_code = 500
    slug = "internal-error"
    title = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


class BadRequest(GatewayError):
    status_code = 400
    slug = "invalid-parameter"
    title = "Invalid request parameter"


class Unauthorized(GatewayError):
    status_code = 401
    slug = "invalid-token"
    title = "Missing or invalid bearer token"

    def __init__(self, detail: str) -> None:
        # RFC 9110 quoted-string: a quote or backslash in the description must not end it early.
        quoted = detail.replace("\\", "\\\\").replace('"', '\\"')
        challenge = f'Bearer realm="bridgehead", error="invalid_token", error_description="{quoted}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(GatewayError):
    status_code = 403
    slug = "insufficient-scope"
    title = "Insufficient scope"

    def __init__(self, detail: str, *, scope: str | None = None) -> None:
        challenge = 'Bearer realm="bridgehead", error="insufficient_scope"'
        if scope:
            challenge += f', scope="{scope}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class NotFound(GatewayError):
    status_code = 404
    slug = "not-found"
    title = "Not found"


class MethodNotAllowed(GatewayError):
    status_code = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class NotAcceptable(GatewayError):
    status_code = 406
    slug = "not-acceptable"
    title = "Not acceptable"


class Conflict(GatewayError):
    status_code = 409
    slug = "conflict"
    title = "Conflict"


class PreconditionFailed(GatewayError):
    status_code = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class PayloadTooLarge(GatewayError):
    status_code = 413
    slug = "payload-too-large"
    title = "Payload too large"


class TooManyRows(PayloadTooLarge):
    slug = "too-many-rows"
    title = "Too many rows"


class UnsupportedMediaType(GatewayError):
    status_code = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class PreconditionRequired(GatewayError):
    status_code = 428
    slug = "if-match-required"
    title = "If-Match required"


class Unprocessable(GatewayError):
    status_code = 422
    slug = "invalid-value"
    title = "Invalid value"


class TooManyExports(GatewayError):
    """One token identity already streams as many exports as ``api.exports_per_subject`` allows."""

    status_code = 429
    slug = "too-many-exports-per-subject"
    title = "Too many exports for this caller"


class ServiceUnavailable(GatewayError):
    status_code = 503
    slug = "database-unavailable"
    title = "Database unavailable"


class ExportsBusy(ServiceUnavailable):
    slug = "too-many-exports"
    title = "Too many exports running"


class KeyNotUniqueError(GatewayError):
    """The mapping's key matched several rows: serving one at random, or a page that skips some, would lie."""

    status_code = 500
    slug = "key-not-unique"
    title = "Resource key is not unique"


class GatewayTimeout(GatewayError):
    status_code = 504
    slug = "database-timeout"
    title = "Database timeout"


def for_status(status: int, detail: str) -> GatewayError:
    """The error class that owns ``status`` (a framework-raised 413, 405, …), so it keeps its problem type."""
    kinds = (
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable, Conflict, PreconditionFailed,
        PayloadTooLarge, UnsupportedMediaType, Unprocessable, PreconditionRequired, ServiceUnavailable, GatewayTimeout,
    )  # fmt: skip
    for kind in kinds:
        if kind.status_code == status:
            return kind(detail)
    error = GatewayError(detail if status < 500 else "internal error")
    error.status_code = status
    return error


def from_legacy(error: LegacyError, *, reading: bool = False) -> GatewayError:
    """The HTTP form of a legacy-side error; its message is already safe to show.

    Args:
        error: the legacy-side error.
        reading: the request only reads (GET): a value the database refused was a query
            parameter or path key (400), not a body field (422).
    """
    match error:
        case ValueRefused():
            if reading:
                return BadRequest(str(error), errors=[{"parameter": "", "detail": str(error)}])
            return Unprocessable(str(error), errors=[{"field": "", "detail": str(error)}])
        case QueryError():
            return BadRequest(error.message, errors=[{"parameter": error.parameter, "detail": error.message}])
        case TransformError():
            return Unprocessable(error.message, errors=[{"field": error.field, "detail": error.message}])
        case LoginRefused():
            return ServiceUnavailable("the database refused the gateway's login", headers={"Retry-After": "30"})
        case DatabaseUnavailable():
            return ServiceUnavailable(str(error), headers={"Retry-After": "5"})
        case TransactionConflict():
            return ServiceUnavailable(
                "the database was busy with conflicting writes; retry", headers={"Retry-After": "1"}
            )
        case StatementTimeout():
            return GatewayTimeout(str(error))
        case IntegrityConflict():
            return Conflict(str(error))
        case KeyNotUnique():
            return KeyNotUniqueError(str(error))
        case SchemaDrift():
            return GatewayError("the mapping does not match the database; an administrator must run 'bridgehead check'")
        case DatabaseError():
            return GatewayError(str(error))
    return GatewayError("the request could not be completed")
