"""A snapshot pass's seen set in SQL: a temporary table on a connection the pass holds to its end.

Temporary, not a shared table, because that makes the promises of ``SnapshotPass``
structural instead of bookkeeping: no other pass (another worker, another thread of
this one) can read or clear it, and it dies with the connection, so a pass killed
mid-way leaves nothing behind that could hide a delete from the next one. It also
keeps a million marks out of the durable store: no WAL or fsync per batch, no write
lock taken from the workers delivering meanwhile, nothing to delete afterwards.

Each batch is one transaction and one commit, so the pass holds no snapshot of the store
between batches and sees fingerprints stored by deliveries as they land. On PostgreSQL it is
one statement: the pairs as one JSON array, parsed by the server, marked and compared. On
SQLite (in process: statements are cheap, rows through them are not) each slice of 400 pairs
is two statements on the DBAPI cursor with the values bound one by one, which binds each
string exactly (``json_each`` would read a JSON key's escapes): the keys go into the seen set
with one multi-row ``INSERT``, and the pairs are compared as a ``VALUES`` list joined to the
fingerprints, with no table written for them. The comparison is SQL equality on both sides:
binary on SQLite, and on PostgreSQL the deterministic collation of ``text``, so keys that
differ only in case or trailing spaces stay distinct.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from sync.state.sync_tables import FINGERPRINTS

__all__ = ("SqlSnapshotPass",)

_SEEN = "sync_pass_seen"
_PRINTS = FINGERPRINTS.name
_SLICE = 400
"""Pairs per SQLite statement: 801 parameters, under the 999 of SQLite builds before 3.32."""


class SqlSnapshotPass:
    """The seen set of one pass of ``sync``, on its own connection of ``engine``."""

    def __init__(self, engine: sa.Engine, sync: str) -> None:
        self.sync = sync
        self.conn: sa.Connection | None = engine.connect()
        self.postgresql = engine.dialect.name == "postgresql"
        try:
            if self.postgresql:
                # Nothing durable is written on this connection, so no commit of it waits for a WAL flush
                # (a temporary table's write still makes its commit flush); reset when the pass ends.
                self._sql("SET synchronous_commit = off")
                # No key index: marking is an append (duplicates are harmless to NOT EXISTS), where a
                # unique index with ON CONFLICT cost more than the comparison; ``unseen`` analyses it.
                self._sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_SEEN} (key text NOT NULL)")
                self._sql(f"TRUNCATE {_SEEN}")  # a pooled connection may carry one from a pass that failed to drop it
            else:
                self._sql("PRAGMA temp_store = FILE")  # a million keys on disk, not in this process's memory
                self._sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_SEEN} (key TEXT PRIMARY KEY) WITHOUT ROWID")
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
        if not self.postgresql:
            return self._see_sqlite(prints)
        try:
            changed = self._see_postgresql(prints)
            self._live.commit()
        except BaseException:
            self._live.rollback()
            raise
        return changed

    def _see_postgresql(self, prints: Sequence[tuple[str, str]]) -> list[int]:
        # One JSON text parameter, parsed by the server: psycopg would escape every element of a text
        # array in Python (the keys are JSON, full of quotes), which cost more than the whole diff.
        # The stored fingerprint as a scalar subquery, one primary-key probe per pair: as a join, the
        # planner (a function scan guessed at 100 rows, the store's statistics stale after a first pass)
        # hashed every fingerprint of the sync for each batch, a pass quadratic in the table's size.
        rows = self._sql(
            "WITH b AS (SELECT p.pair ->> 0 AS key, p.pair ->> 1 AS print, p.n "
            "FROM json_array_elements(%(prints)s::json) WITH ORDINALITY AS p (pair, n)), "
            f"marked AS (INSERT INTO pg_temp.{_SEEN} (key) SELECT key FROM b) "
            "SELECT b.n - 1 FROM b WHERE b.print IS DISTINCT FROM "
            f"(SELECT f.fingerprint FROM {_PRINTS} f WHERE f.sync = %(sync)s AND f.key = b.key) ORDER BY b.n",
            {"prints": msgspec.json.encode(prints).decode(), "sync": self.sync},
        )
        return [int(n) for (n,) in rows]

    def _see_sqlite(self, prints: Sequence[tuple[str, str]]) -> list[int]:
        # The DBAPI connection itself: SQLAlchemy's execute costs more than these statements' work,
        # and its transaction is not begun here, so the batch's is the driver's own (begun by the
        # first INSERT, as pysqlite does), committed or rolled back below.
        dbapi = self._live.connection.dbapi_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        changed: list[int] = []
        try:
            for start in range(0, len(prints), _SLICE):
                part = prints[start : start + _SLICE]
                keys = [key for key, _ in part]
                cursor.execute(_mark_sql(len(part)), keys)
                # ?1..?n the keys, ?n+1..?2n the fingerprints, ?2n+1 the sync: three lists joined, no per-pair work.
                found = cursor.execute(_compare_sql(len(part)), [*keys, *[fp for _, fp in part], self.sync])
                changed += [start + n for (n,) in found.fetchall()]
            dbapi.commit()
        except BaseException:
            dbapi.rollback()
            raise
        finally:
            cursor.close()
        return changed

    def unseen(self, batch_size: int = 5000) -> Iterator[list[str]]:
        seen = f"pg_temp.{_SEEN}" if self.postgresql else f"temp.{_SEEN}"
        prints = _PRINTS if self.postgresql else f"main.{_PRINTS}"
        marker = "%(sync)s" if self.postgresql else "?"
        query = (
            f"SELECT f.key FROM {prints} f WHERE f.sync = {marker} "
            f"AND NOT EXISTS (SELECT 1 FROM {seen} s WHERE s.key = f.key) ORDER BY f.key"
        )
        if self.postgresql:
            self._sql(f"ANALYZE pg_temp.{_SEEN}")  # temporary tables are never auto-analysed: a plan from its size
        # A server-side cursor for this statement only: Connection.execution_options would set it for
        # every later one on the connection, and close() could then run neither DROP nor RESET.
        result = self._live.exec_driver_sql(
            query, {"sync": self.sync} if self.postgresql else (self.sync,), execution_options={"stream_results": True}
        )
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
                conn.exec_driver_sql("RESET synchronous_commit")  # the pooled connection as it was
            else:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_SEEN}")
            conn.commit()
        except Exception:
            conn.invalidate()  # the connection (and its temporary tables) is discarded, not pooled
        finally:
            conn.close()

    def __enter__(self) -> SqlSnapshotPass:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def _mark_sql(n: int) -> str:
    """The ``n`` keys into the seen set (SQLite), one multi-row statement."""
    return f"INSERT OR IGNORE INTO temp.{_SEEN} (key) VALUES " + ",".join(["(?)"] * n)


@functools.cache
def _compare_sql(n: int) -> str:
    """Positions (0-based, in order) of the ``n`` pairs whose fingerprint differs from the stored one (SQLite).

    The positions are literals of the text; the pairs are ``VALUES`` rows, compared where they are.
    """
    rows = ",".join(f"({i},?{i + 1},?{n + i + 1})" for i in range(n))
    return (
        f"WITH b (pos, key, fingerprint) AS (VALUES {rows}) "
        f"SELECT b.pos FROM b LEFT JOIN main.{_PRINTS} f ON f.sync = ?{2 * n + 1} AND f.key = b.key "
        "WHERE f.fingerprint IS NULL OR f.fingerprint <> b.fingerprint ORDER BY b.pos"
    )
