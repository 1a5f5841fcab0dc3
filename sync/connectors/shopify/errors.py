"""Every Shopify error code the connector knows, and what the engine does about it: one table.

Two kinds of codes arrive with HTTP 200: top-level ``errors[].extensions.code``
(the request as a whole: throttling, a server fault, a query too expensive) and
``userErrors[].code`` (one record refused, or a request-wide refusal with no
record index). ``OUTCOMES`` maps both to an outcome:

- ``retry``: transient; the same request may succeed after a backoff (never a dead letter);
- ``split``: the request is too big; send it again in smaller pieces, then retry;
- ``dead_letter``: the shop refused this record as it is; record the error, retry on later
  runs up to ``max_attempts``, then park it in the DLQ;
- ``fatal``: nothing else in this run can succeed (credentials, a bug in our request).

A code not in the table is ``fatal`` at the top level (an unknown failure of the whole
request must stop the run, not be skipped) and ``dead_letter`` on a record.
"""

from __future__ import annotations

from sync.connectors.base import Outcome
from sync.exceptions import Fatal, Retriable, Skippable, SyncError

__all__ = ("OUTCOMES", "CostExceeded", "Outcome", "graphql_error", "outcome", "user_error")

OUTCOMES: dict[str, Outcome] = {
    # -- top level: errors[].extensions.code ---------------------------------------------
    "THROTTLED": "retry",  # the cost bucket is empty; wait for it to refill (RateLimited)
    "INTERNAL_SERVER_ERROR": "retry",  # Shopify's own failure, reported with HTTP 200
    "SERVICE_UNAVAILABLE": "retry",
    "TIMEOUT": "retry",
    "MAX_COST_EXCEEDED": "split",  # one query above the single-query limit (1000 points)
    "ACCESS_DENIED": "fatal",  # the app lacks a scope
    "BAD_REQUEST": "fatal",  # our query is malformed: a bug, no retry helps
    "SHOP_INACTIVE": "fatal",
    # -- per record or request: userErrors[].code ----------------------------------------
    "CHANGE_FROM_QUANTITY_STALE": "retry",  # someone moved the stock: re-read and set again
    "COMPARE_QUANTITY_STALE": "retry",
    "IDEMPOTENCY_CONCURRENT_REQUEST": "retry",  # the first request with this key is still running
    "IDEMPOTENCY_KEY_PARAMETER_MISMATCH": "fatal",  # we reused a key for another change: a bug
    "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED": "retry",  # a later run sends it with a fresh key
    "INVALID": "dead_letter",
    "BLANK": "dead_letter",
    "TAKEN": "dead_letter",
    "TOO_LONG": "dead_letter",
    "NOT_FOUND": "dead_letter",
    "INVALID_NAME": "fatal",
    "INVALID_REASON": "fatal",
    "TOO_MANY": "fatal",  # we built a batch above the 250 cap: a bug
}


class CostExceeded(SyncError):
    """A query cost more than the single-query limit: the caller sends it again in smaller pieces.

    Not ``Retriable``: the same query costs the same every time, so request-level retries
    would only waste the bucket; a connector that cannot split further raises ``Fatal``."""


def outcome(code: str | None, *, top_level: bool) -> Outcome:
    if code is not None and code in OUTCOMES:
        return OUTCOMES[code]
    return "fatal" if top_level else "dead_letter"


def graphql_error(code: str | None, message: str) -> SyncError:
    """The exception for a top-level GraphQL error (THROTTLED is the client's, with its wait)."""
    kind = outcome(code, top_level=True)
    text = f"{code or 'GraphQL error'}: {message}"[:500]
    if kind == "split":
        return CostExceeded(text)
    return Retriable(text) if kind == "retry" else Fatal(text)


def user_error(code: str | None, field: str, message: str) -> SyncError:
    """The per-record error for one ``userErrors`` entry."""
    text = f"{code}: {field}: {message}"
    kind = outcome(code, top_level=False)
    if kind == "fatal":
        return Fatal(text)
    if kind in ("retry", "split"):
        return Retriable(text)
    return Skippable(text, code=code)
