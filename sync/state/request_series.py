"""A small rolling table of the gateway's requests per minute and status class, for the console's chart.

Each gateway process counts in memory and adds its counts here every few seconds
(``gateway/console/requests.py``), so the chart covers every worker of ``serve --workers N``
without Prometheus. Minutes older than ``RETENTION`` are dropped on each flush.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from sync.state.store import METADATA
from sync.state.utc import UtcDateTime, utcnow

if TYPE_CHECKING:
    from sync.state.store import StateDatabase

__all__ = ("REQUEST_BUCKETS", "RETENTION", "RequestSeries")

RETENTION = dt.timedelta(hours=48)

REQUEST_BUCKETS = sa.Table(
    "gateway_request_buckets",
    METADATA,
    sa.Column("minute", UtcDateTime(), primary_key=True),
    sa.Column("status_class", sa.String(3), primary_key=True),  # 2xx, 3xx, 4xx, 5xx
    sa.Column("count", sa.Integer, nullable=False),
)


@dataclass(frozen=True, slots=True)
class RequestSeries:
    db: StateDatabase

    def add(self, counts: Mapping[tuple[dt.datetime, str], int]) -> None:
        """Add per-(minute, status class) counts; several processes may add to the same minute."""
        if not counts:
            return
        rows = [{"minute": m, "status_class": c, "count": n} for (m, c), n in sorted(counts.items()) if n]
        with self.db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # same on_conflict API
            statement = insert(REQUEST_BUCKETS)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["minute", "status_class"],
                    set_={"count": REQUEST_BUCKETS.c.count + statement.excluded.count},
                ),
                rows,
            )
            conn.execute(REQUEST_BUCKETS.delete().where(REQUEST_BUCKETS.c.minute < utcnow() - RETENTION))

    def since(self, start: dt.datetime) -> list[tuple[dt.datetime, str, int]]:
        query = (
            sa.select(REQUEST_BUCKETS)
            .where(REQUEST_BUCKETS.c.minute >= start)
            .order_by(REQUEST_BUCKETS.c.minute, REQUEST_BUCKETS.c.status_class)
        )
        with self.db.engine.connect() as conn:
            return [(r.minute, r.status_class, int(r._mapping["count"])) for r in conn.execute(query)]
