"""Timestamps in the state store: aware UTC in, aware UTC out, on every backend.

``DateTime(timezone=True)`` keeps the offset on PostgreSQL but SQLite stores the
text without it and hands back a *naive* datetime: compared with an aware one
(a shop's ``updatedAt``, a legacy change time in Europe/London) that raises
``TypeError``. ``UtcDateTime`` normalises on the way in (any zone -> UTC) and on
the way out (naive -> UTC), so every reader of the store gets the same kind of value.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

__all__ = ("UtcDateTime", "utcnow")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """An aware UTC datetime column; a naive value given to it is refused (its zone is unknown)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to a UTC column: say which zone it is in")
        utc = value.astimezone(dt.UTC)
        # SQLite keeps no offset: store the UTC wall time and put the zone back on the way out.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
