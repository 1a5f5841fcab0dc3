"""Per-destination state: quota holds (a spent day limit) and API usage per account per day.

Mixed into ``SyncStore``. A hold is written once by the worker that met the limit and read by
every run before it sends anything; usage rows are incremented in place (one per account and
UTC day), so ``sync status`` shows what each tenant's calls and downloaded bytes came to.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from sync.state.sync_tables import API_USAGE, DESTINATION_HOLDS
from sync.state.utc import utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ("DestinationLog",)


class DestinationLog:
    engine: Engine

    def hold_destination(self, destination: str, until: dt.datetime, reason: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(DESTINATION_HOLDS.delete().where(DESTINATION_HOLDS.c.destination == destination))
            conn.execute(DESTINATION_HOLDS.insert().values(destination=destination, until=until, reason=reason))

    def destination_hold(self, destination: str, now: dt.datetime | None = None) -> tuple[dt.datetime, str] | None:
        """(until, reason) while the destination is held; None once ``until`` has passed."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(DESTINATION_HOLDS.c.until, DESTINATION_HOLDS.c.reason).where(
                    DESTINATION_HOLDS.c.destination == destination
                )
            ).first()
        if row is None or row.until <= (now or utcnow()):
            return None
        return row.until, row.reason

    def add_usage(self, account: str, day: str, *, calls: int, bytes_in: int, bytes_out: int) -> None:
        with self.engine.begin() as conn:
            moved = conn.execute(
                API_USAGE.update()
                .where(API_USAGE.c.account == account, API_USAGE.c.day == day)
                .values(calls=API_USAGE.c.calls + calls, bytes_in=API_USAGE.c.bytes_in + bytes_in,
                        bytes_out=API_USAGE.c.bytes_out + bytes_out)
            )  # fmt: skip
            if moved.rowcount:
                return
            try:
                with conn.begin_nested():
                    conn.execute(API_USAGE.insert().values(account=account, day=day, calls=calls, bytes_in=bytes_in,
                                                           bytes_out=bytes_out))  # fmt: skip
            except sa.exc.IntegrityError:  # another worker inserted the row first
                conn.execute(
                    API_USAGE.update()
                    .where(API_USAGE.c.account == account, API_USAGE.c.day == day)
                    .values(calls=API_USAGE.c.calls + calls, bytes_in=API_USAGE.c.bytes_in + bytes_in,
                            bytes_out=API_USAGE.c.bytes_out + bytes_out)
                )  # fmt: skip

    def usage(self, days: int = 7) -> list[dict[str, Any]]:
        """Usage rows of the last ``days`` UTC days, newest day first."""
        since = (utcnow() - dt.timedelta(days=days - 1)).strftime("%Y-%m-%d")
        with self.engine.connect() as conn:
            query = sa.select(API_USAGE).where(API_USAGE.c.day >= since)
            rows = conn.execute(query.order_by(API_USAGE.c.day.desc(), API_USAGE.c.account)).all()
        return [dict(r._mapping) for r in rows]
