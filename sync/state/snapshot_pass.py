"""A snapshot pass's seen set in SQL: a temporary table on a connection the pass holds to its end.

Temporary, not a shared table, because that makes the promises of ``SnapshotPass``
structural instead of bookkeeping: no other pass (another worker, another thread of
this one) can read or clear it, and it dies with the connection, so a pass killed
mid-way leaves nothing behind that could hide a delete from the next one. It also
keeps a million marks out of the durable store: no WAL or fsync per batch, no write
lock taken from the workers delivering meanwhile, nothing to delete afterwards.

Each batch is one round trip (PostgreSQL: the pairs as one JSON array, parsed by the server,
marked and compared in one statement; SQLite: ``executemany`` into a temporary batch table, which binds
each string exactly, where ``json_each`` would cut a key at a NUL) and one commit, so
the pass holds no snapshot of the store between batches and sees fingerprints stored
by deliveries as they land. The comparison is SQL equality on both sides: binary on
SQLite, and on PostgreSQL the deterministic collation of ``text``, so keys that differ
only in case or trailing spaces stay distinct.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from sync.state.sync_tables import FINGERPRINTS

__all__ = ("SqlSnapshotPass",)

_SEEN = "sync_pass_seen"
_BATCH = "sync_pass_batch"
_PRINTS = FINGERPRINTS.name


class SqlSnapshotPass:
    """The seen set of one pass of ``sync``, on its own connection of ``engine``."""

    def __init__(self, engine: sa.Engine, sync: str) -> None:
        self.sync = sync
        self.conn: sa.Connection | None = engine.connect()
        self.postgresql = engine.dialect.name == "postgresql"
        try:
            if self.postgresql:
                self._sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_SEEN} (key text PRIMARY KEY)")
                self._sql(f"TRUNCATE {_SEEN}")  # a pooled connection may carry one from a pass that failed to drop it
            else:
                self._sql("PRAGMA temp_store = FILE")  # a million keys on disk, not in this process's memory
                self._sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_SEEN} (key TEXT PRIMARY KEY) WITHOUT ROWID")
                self._sql(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_BATCH} "
                    "(pos INTEGER PRIMARY KEY, key TEXT NOT NULL, fingerprint TEXT NOT NULL)"  # pos: the rowid
                )
                self._sql(f"DELETE FROM temp.{_SEEN}")
            self._live.commit()
        except BaseException:
            self.close()
            raise

    @property
    def _live(self) -> sa.Connection:
        if self.conn is None:
            raise RuntimeError("the snapshot pass is closed")
        return self.conn

    def _sql(self, text: str, params: Any = None) -> sa.CursorResult[Any]:
        return self._live.exec_driver_sql(text, params) if params is not None else self._live.exec_driver_sql(text)

    def see(self, prints: Sequence[tuple[str, str]]) -> list[int]:
        if not prints:
            return []
        try:
            changed = self._see_postgresql(prints) if self.postgresql else self._see_sqlite(prints)
            self._live.commit()
        except BaseException:
            self._live.rollback()
            raise
        return changed

    def _see_postgresql(self, prints: Sequence[tuple[str, str]]) -> list[int]:
        # One JSON text parameter, parsed by the server: psycopg would escape every element of a text
        # array in Python (the keys are JSON, full of quotes), which cost more than the whole diff.
        rows = self._sql(
            "WITH b AS (SELECT p.pair ->> 0 AS key, p.pair ->> 1 AS print, p.n "
            "FROM json_array_elements(%(prints)s::json) WITH ORDINALITY AS p (pair, n)), "
            f"marked AS (INSERT INTO pg_temp.{_SEEN} (key) SELECT key FROM b ON CONFLICT DO NOTHING) "
            f"SELECT b.n - 1 FROM b LEFT JOIN {_PRINTS} f ON f.sync = %(sync)s AND f.key = b.key "
            "WHERE f.fingerprint IS NULL OR f.fingerprint <> b.print ORDER BY b.n",
            {"prints": msgspec.json.encode(prints).decode(), "sync": self.sync},
        )
        return [int(n) for (n,) in rows]

    def _see_sqlite(self, prints: Sequence[tuple[str, str]]) -> list[int]:
        self._sql(f"DELETE FROM temp.{_BATCH}")
        # Into an empty table, rows get rowids 1, 2, … in insert order (SQLite's documented rowid choice).
        self._sql(f"INSERT INTO temp.{_BATCH} (key, fingerprint) VALUES (?, ?)", list(prints))
        self._sql(f"INSERT OR IGNORE INTO temp.{_SEEN} (key) SELECT key FROM temp.{_BATCH}")
        rows = self._sql(
            f"SELECT b.pos - 1 FROM temp.{_BATCH} b LEFT JOIN main.{_PRINTS} f ON f.sync = ? AND f.key = b.key "
            "WHERE f.fingerprint IS NULL OR f.fingerprint <> b.fingerprint ORDER BY b.pos",
            (self.sync,),
        )
        return [int(n) for (n,) in rows]

    def unseen(self, batch_size: int = 5000) -> Iterator[list[str]]:
        seen = f"pg_temp.{_SEEN}" if self.postgresql else f"temp.{_SEEN}"
        prints = _PRINTS if self.postgresql else f"main.{_PRINTS}"
        marker = "%(sync)s" if self.postgresql else "?"
        query = (
            f"SELECT f.key FROM {prints} f WHERE f.sync = {marker} "
            f"AND NOT EXISTS (SELECT 1 FROM {seen} s WHERE s.key = f.key) ORDER BY f.key"
        )
        conn = self._live.execution_options(stream_results=True)
        result = conn.exec_driver_sql(query, {"sync": self.sync} if self.postgresql else (self.sync,))
        try:
            while part := result.fetchmany(batch_size):
                yield [key for (key,) in part]
        finally:
            result.close()
            self._live.commit()

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.rollback()
            if self.postgresql:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{_SEEN}")
            else:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_SEEN}")
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_BATCH}")
            conn.commit()
        except Exception:
            conn.invalidate()  # the connection (and its temporary tables) is discarded, not pooled
        finally:
            conn.close()

    def __enter__(self) -> SqlSnapshotPass:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
