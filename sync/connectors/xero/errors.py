"""Every Xero answer the connector knows, and what the engine does about it: one table.

Codes are the HTTP status, a 429's ``X-Rate-Limit-Problem`` (``429:day``), a 400's ``Type``
(``ValidationException``) and an element's ``StatusAttributeString`` in a batch sent with
``summarizeErrors=false`` (``element:ERROR``). A code not in the table is ``fatal`` for a whole
request (an unknown failure must stop the run, not be skipped) and ``dead_letter`` on an element.
"""

from __future__ import annotations

import datetime as dt

from sync.connectors.base import Outcome
from sync.exceptions import Fatal, QuotaExhausted, RateLimited, Retriable, Skippable, SyncError

__all__ = ("OUTCOMES", "element_error", "outcome", "request_error")

OUTCOMES: dict[str, Outcome] = {
    "429:minute": "retry",  # 60 calls in the rolling minute: wait Retry-After
    "429:concurrent": "retry",  # more than 5 calls in flight
    "429:appminute": "retry",  # the app's 10,000 a minute across every tenant
    "429:day": "pause",  # 5,000 calls today: nothing goes before the reset (Retry-After)
    "500": "retry",
    "502": "retry",
    "503": "retry",  # also Xero's "organisation offline" / maintenance
    "504": "retry",
    "timeout": "retry",  # the write may have been applied: the retry carries the same Idempotency-Key
    "400": "fatal",  # a malformed request (or an Idempotency-Key reused for another body): our bug
    "400:PostDataInvalidException": "fatal",
    "400:ValidationException": "dead_letter",  # only without summarizeErrors: the elements say why
    "401": "fatal",  # after one refresh: the grant is expired or revoked, reconnect
    "403": "fatal",  # the tenant is not connected to this app, or a scope is missing
    "404": "fatal",  # wrong URL
    "element:ERROR": "dead_letter",  # one contact, item or invoice refused: the others go on
    "element:WARNING": "retry",  # never raised: a warning is delivered (kept with the record)
}


def outcome(code: str, *, element: bool = False) -> Outcome:
    if code in OUTCOMES:
        return OUTCOMES[code]
    status = code.split(":")[0]
    if status.isdigit() and int(status) >= 500:
        return "retry"
    return "dead_letter" if element else "fatal"


def request_error(code: str, message: str, *, retry_after: float = 1.0, until: dt.datetime | None = None) -> SyncError:
    """The exception for a whole request's failure, from the table."""
    kind = outcome(code)
    text = f"Xero {code}: {message}"[:500]
    if kind == "pause":
        return QuotaExhausted(text, until or dt.datetime.now(dt.UTC) + dt.timedelta(seconds=retry_after))
    if kind == "retry":
        return RateLimited(text, retry_after) if code.startswith("429") else Retriable(text)
    if kind == "dead_letter":
        return Skippable(text, code=code)
    return Fatal(text)


def element_error(status: str, messages: list[str]) -> SyncError:
    text = "; ".join(messages) or f"Xero refused the element ({status})"
    kind = outcome(f"element:{status}", element=True)
    if kind == "fatal":
        return Fatal(text)
    if kind == "retry":
        return Retriable(text)
    return Skippable(text, code=status)
