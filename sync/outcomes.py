"""What a destination's answer means for the engine: a table, not subclassing (STYLE C8).

``STATUS_OUTCOMES`` maps HTTP statuses to the exception family the engine acts on;
a connector extends it with its own codes (``GRAPHQL_CODES`` for Shopify's
``errors[].extensions.code``) instead of overriding methods.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from sync.exceptions import Fatal, RateLimited, Retriable, SyncError

__all__ = ("STATUS_OUTCOMES", "classify_exception", "classify_response", "retry_after_seconds")

STATUS_OUTCOMES: Mapping[int, type[SyncError]] = {
    400: Fatal,  # our request is malformed: no retry will fix it
    401: Fatal,  # bad or revoked token: every other request fails too
    402: Fatal,  # shop frozen (unpaid)
    403: Fatal,
    404: Fatal,  # wrong shop URL or API version
    408: Retriable,
    423: Fatal,  # shop locked
    429: RateLimited,
    500: Retriable,
    502: Retriable,
    503: Retriable,
    504: Retriable,
}


def retry_after_seconds(response: httpx.Response, default: float = 1.0) -> float:
    """``Retry-After`` in seconds; Shopify sends fractions (``0.5``), never milliseconds."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", default)))
    except ValueError:
        return default


def classify_response(
    response: httpx.Response, table: Mapping[int, type[SyncError]] = STATUS_OUTCOMES
) -> SyncError | None:
    """None for a 2xx; otherwise the error to raise, from the table (5xx default to Retriable)."""
    if response.is_success:
        return None
    kind = table.get(response.status_code, Retriable if response.status_code >= 500 else Fatal)
    message = f"HTTP {response.status_code}: {response.text[:200]}"
    if kind is RateLimited:
        return RateLimited(message, retry_after_seconds(response))
    return kind(message)


def classify_exception(exc: httpx.HTTPError) -> SyncError:
    """Transport failures are retriable: a timeout or a dropped connection may have applied the write,
    which is why every write we send is idempotent (identifier upserts, ``@idempotent`` keys)."""
    return Retriable(f"{type(exc).__name__}: {exc}")
