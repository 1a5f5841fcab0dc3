"""The answer to a write that has committed: built so that it cannot fail, and headers that always encode.

Once the legacy transaction commits, the row exists; a 500 then makes the client
retry a write that happened (and get 409, or worse, run a procedure twice). So
everything after the commit goes through here:

- ``after_commit(step, fn)`` runs a side step (the audit entry) and logs its
  failure instead of raising it: the write happened, the answer says so;
- ``committed_response(...)`` encodes the body and checks every header before
  the response leaves the handler (Litestar encodes headers as Latin-1 only when
  sending, too late to answer anything else); a header that still cannot be
  sent is dropped and logged, never turned into a 500.

``uri_reference`` percent-encodes a path as RFC 3986 asks (UTF-8, then ``%XX``), so a
key such as ``J€SEC1`` gives ``Location: /v1/jobs/J%E2%82%ACSEC1``, which the router
decodes back to the same key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import msgspec
import structlog
from litestar import Response

__all__ = ("after_commit", "committed_response", "uri_reference")

log = structlog.get_logger("bridgehead.writes")
_encoder = msgspec.json.Encoder(decimal_format="number")
# RFC 3986 pchar minus '%' and '/' inside one segment: what a path segment may hold unescaped.
_SEGMENT_SAFE = "!$&'()*+,;=:@"


def uri_reference(*segments: str) -> str:
    """``/a/b`` from path segments, each percent-encoded (UTF-8) so the result is plain ASCII."""
    return "".join("/" + quote(segment, safe=_SEGMENT_SAFE) for segment in segments)


def after_commit(step: str, fn: Callable[[], Any]) -> None:
    """Run a step that follows a committed write; its failure is logged, never raised."""
    try:
        fn()
    except Exception:
        log.exception("a step after a committed write failed; the write itself stands", step=step)


def committed_response(status: int, body: Any, headers: Mapping[str, str], media_type: str) -> Response[Any]:
    """A response for a committed write that is sure to be sendable (see the module docstring)."""
    try:
        content = body if isinstance(body, bytes) else _encoder.encode(body)
    except Exception:
        log.exception("the body of a committed write could not be encoded", status=status)
        content = b""
    sendable: dict[str, str] = {}
    for name, value in headers.items():
        try:
            value.encode("latin-1")
            if any(c in value for c in "\r\n\x00"):
                raise ValueError("control character in a header")
            sendable[name] = value
        except (UnicodeError, ValueError):
            log.error("a header of a committed write cannot be sent; dropped", header=name)
    return Response(content, status_code=status, media_type=media_type, headers=sendable)
