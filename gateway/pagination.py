"""Opaque keyset cursors: signed, bound to the query that issued them, and the Link header.

A cursor carries the stored sort values of a page's last row. It is signed with
HMAC-SHA256 so a client cannot forge a position, and it names a fingerprint of
the filters and sort that produced it, so it cannot be replayed on another query.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
from decimal import Decimal
from typing import Any

import msgspec

__all__ = ("CursorCodec", "InvalidCursor")


class InvalidCursor(ValueError):
    """The cursor is malformed, forged, or belongs to another query."""


def _tag(value: Any) -> list[Any]:
    # JSON alone would turn Decimal, datetime and bytes into strings and lose the stored type.
    match value:
        case None | bool() | int() | float() | str():
            return ["v", value]
        case Decimal():
            return ["d", str(value)]
        case dt.datetime():
            return ["t", value.isoformat()]
        case dt.date():
            return ["a", value.isoformat()]
        case bytes():
            return ["b", base64.b64encode(value).decode()]
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


_UNTAG = {
    "v": lambda v: v,
    "d": Decimal,
    "t": dt.datetime.fromisoformat,
    "a": dt.date.fromisoformat,
    "b": base64.b64decode,
}


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        # One-shot C HMAC: the same digest as hmac.new(...).digest() without building an HMAC object per page.
        return hmac.digest(self._secret, payload, "sha256")[:16]

    def encode(self, values: tuple[Any, ...], fingerprint: str) -> str:
        payload = msgspec.json.encode([fingerprint, [_tag(v) for v in values]])
        token = payload + self._sign(payload)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode()

    def decode(self, cursor: str, fingerprint: str, width: int) -> tuple[Any, ...]:
        """The sort values inside ``cursor``; raises ``InvalidCursor`` unless it is ours and for this query."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (ValueError, TypeError):
            raise InvalidCursor("cursor is not valid") from None
        payload, signature = raw[:-16], raw[-16:]
        if len(raw) <= 16 or not hmac.compare_digest(signature, self._sign(payload)):
            raise InvalidCursor("cursor is not valid: it was altered or issued by another server")
        try:
            issued_for, tagged = msgspec.json.decode(payload)
            values = tuple(_UNTAG[tag](value) for tag, value in tagged)
        except (ValueError, TypeError, KeyError, msgspec.DecodeError):
            raise InvalidCursor("cursor is not valid") from None
        if issued_for != fingerprint or len(values) != width:
            raise InvalidCursor("cursor belongs to a different query: keep the same filters and sort")
        return values
