"""The one door to the legacy database: engines, pools, timeouts, and error wrapping.

All calls block (pyodbc and sqlite3 do); the gateway runs them in worker threads.
Every driver error is classified once, by the backend, into a ``DatabaseError``
whose message is safe to show; the driver's own text is logged, never returned.

One ``Database`` keeps a pool per role (``dialects.base.EngineRole``): requests
(``pool_size``), exports (``export_pool_size``, connected with the driver's
streaming options) and one connection for readiness probes. Connections open on
first use, so an export-free gateway never opens an export connection.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
import structlog

from legacy_adapters.compiled import Prepared, StatementCache
from legacy_adapters.dialects import get_backend
from legacy_adapters.dialects.base import GUARD
from legacy_adapters.exceptions import DatabaseError, DatabaseUnavailable, TransactionConflict, ValueRefused

if TYPE_CHECKING:
    from legacy_adapters.dialects.base import EngineRole
    from legacy_adapters.mapping.model import DatabaseConfig

__all__ = ("Database", "PageAfter", "Prepared", "StatementObserver")

PageAfter = Callable[["Sequence[Any] | None", int], sa.Executable]
"""For a backend that cannot stream: the statement for the ``limit`` rows after the given last row
(``None``: the first rows), in the same total order."""

StatementObserver = Callable[[str, "Sequence[Any] | dict[str, Any]", float], None]
"""Told of every statement a read runs on the raw cursor: its SQL text, parameters and seconds from
execute to the driver's answer (what SQLAlchemy's ``before/after_cursor_execute`` events see)."""

log = structlog.get_logger("bridgehead.database")
T = TypeVar("T")


PING_AFTER_IDLE_S = 5.0
"""A pooled connection unused for longer is tested before use; a busy one is trusted."""


def _ping_idle_connections(engine: sa.Engine) -> None:
    """Pessimistic disconnect handling without a round trip per request.

    ``pool_pre_ping`` would send a ``SELECT 1`` on every checkout (a quarter of a
    keyed read's time through ODBC). A connection used moments ago is alive or its
    failure will be seen and the connection discarded by the error it raises; one
    idle for a while may have been cut by a restart or a firewall, so it is tested
    and, when dead, replaced before the request sees it.
    """

    @sa.event.listens_for(engine, "connect")
    def _fresh(_dbapi_conn: Any, record: Any) -> None:
        record.info["last_used"] = time.monotonic()

    @sa.event.listens_for(engine, "checkin")
    def _used(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["last_used"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("last_used", 0.0) < PING_AFTER_IDLE_S:
            return
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            cursor.close()
        except Exception:
            # The pool discards this connection and checks out (or opens) another.
            raise sa.exc.DisconnectionError("idle connection is dead") from None


def _driver_rows(result: sa.CursorResult[Any]) -> Sequence[Sequence[Any]]:
    """Every row of ``result`` as the driver made it: no SQLAlchemy ``Row`` per row (the decoder indexes them)."""
    cursor, strategy = result.cursor, result.cursor_strategy
    try:
        rows: Sequence[Sequence[Any]] = cursor.fetchall()
    except Exception as exc:
        # What SQLAlchemy's own fetch does: wrap the driver's error (so ``errors()`` classifies it)
        # and invalidate a connection the backend finds dead.
        strategy.handle_exception(result, cursor, exc)
    finally:
        result.close()
    return rows


_CURSORS = "bridgehead_cursors"
"""``connection.info`` key: the connection's cursors by the SQL text each last ran. pyodbc prepares a
statement once per cursor and runs it again as long as the same SQL text comes back (a keyed read's
SQLPrepare was a quarter of its CPU on SQLite, and on PostgreSQL and MariaDB a new cursor each time
cost 2-4 times the reused one's run). The pool clears ``info`` when it closes or invalidates the
connection, and the cursors go with it."""

CURSORS_KEPT = 32
"""Prepared cursors kept per pooled connection (the request shapes in use: gets, pages, counts)."""


def _close_quietly(cursor: Any, driver_error: Any) -> None:
    with contextlib.suppress(driver_error):  # a dead connection's: the pool replaces it
        cursor.close()


class Database:
    """A pooled engine for one legacy database."""

    def __init__(self, config: DatabaseConfig) -> None:
        self.config = config
        self.backend = get_backend(config.url)
        self.engine = self._engine("requests")
        self.export_engine = self._engine("exports")
        self.probe_engine = self._engine("probe")
        self._observers: tuple[StatementObserver, ...] = ()
        self._driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        self._statements = StatementCache(self.engine.dialect)

    def _engine(self, role: EngineRole) -> sa.Engine:
        engine = sa.create_engine(self.config.url, **self.backend.engine_options(self.config, role))
        self.backend.install(engine, self.config, role)
        _ping_idle_connections(engine)
        return engine

    @property
    def dialect(self) -> sa.Dialect:
        return self.engine.dialect

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn any driver error raised in the block into a safe ``DatabaseError`` (its text logged)."""
        try:
            yield
        except DatabaseError:
            raise
        except sa.exc.TimeoutError:
            raise DatabaseUnavailable("all database connections are busy") from None
        except OverflowError:
            # sqlite3 binds a Python int past 64 bits by raising this, outside the DB-API tree.
            raise ValueRefused("a number is out of range for its column in the database") from None
        except (sa.exc.DBAPIError, sa.exc.OperationalError) as exc:
            error = self.backend.classify(exc)
            # The driver's words may name tables or values: they go to the log only.
            log.error("database error", kind=type(error).__name__, detail=str(getattr(exc, "orig", exc)))
            raise error from None

    def observe_statements(self, observer: StatementObserver) -> Callable[[], None]:
        """Have ``observer`` told of every statement run on the raw cursor (the gateway's metrics);
        returns what stops it."""
        self._observers = (*self._observers, observer)

        def stop() -> None:
            self._observers = tuple(o for o in self._observers if o is not observer)

        return stop

    def fetch_all(self, statement: sa.Executable) -> list[Sequence[Any]]:
        """Run ``statement`` and return every row as the driver's tuple.

        Compiled once per shape (SQLAlchemy's cache key) and run on the raw cursor, unless
        a typed column needs SQLAlchemy's result to convert its values.
        """
        with self.errors():
            bound = self._statements.bind(statement)  # type: ignore[arg-type]  # every Executable here is a ClauseElement
            if bound is None:
                with self.engine.connect() as conn:
                    return conn.execute(statement).all()  # type: ignore[return-value]  # Row is a Sequence
            return self._fetch_raw(*bound)

    def prepare(self, statement: sa.Select[Any]) -> Prepared:
        return Prepared(statement, self.engine.dialect)

    def fetch_prepared(self, prepared: Prepared, values: dict[str, Any]) -> list[Sequence[Any]]:
        """Run a prepared statement with ``values`` for its named parameters.

        On the raw cursor, unless a typed column needs SQLAlchemy's result to convert its values (a
        migration twin's ``Date`` on SQLite, a ``DATE`` that FreeTDS sends as text): as ``fetch_all``.
        """
        with self.errors():
            if not prepared.raw_rows:
                with self.engine.connect() as conn:
                    rows: list[Sequence[Any]] = conn.execute(prepared.statement, values).all()  # type: ignore[call-overload]  # a Select
                    return rows
            sql, parameters = prepared.bind(values)
            return self._fetch_raw(sql, parameters)

    def fetch_rows(self, sql: str, parameters: Sequence[Any] | dict[str, Any]) -> list[Sequence[Any]]:
        """Run SQL text compiled for this engine (``Prepared``) and return the driver's rows."""
        with self.errors():
            return self._fetch_raw(sql, parameters)

    def _fetch_raw(self, sql: str, parameters: Sequence[Any] | dict[str, Any]) -> list[Sequence[Any]]:
        """One statement on a pooled connection's own cursor: what SQLAlchemy's execute keeps, without its objects.

        The checkout goes through the pool (its events: the idle ping, the metrics, the
        timeouts restored at check-in; the rollback at check-in), the statement timeout is
        armed where the client keeps it (``GUARD``), observers time the statement, and a
        driver error comes out as SQLAlchemy's ``DBAPIError`` (so ``errors()`` classifies it)
        after a connection the backend finds dead is invalidated, as ``handle_error`` does.
        """
        try:
            connection = self.engine.raw_connection()
        except self._driver_error as exc:  # a failed connect: what Engine.connect() raises
            raise sa.exc.DBAPIError.instance(
                None, None, exc, self._driver_error, connection_invalidated=True, dialect=self.engine.dialect
            ) from exc
        cursors: dict[str, Any] = connection.info.setdefault(_CURSORS, {})
        cursor = cursors.pop(sql, None)  # this connection's cursor that last ran ``sql``, prepared
        keep = False
        try:
            if cursor is None:
                cursor = connection.dbapi_connection.cursor()  # type: ignore[union-attr]  # checked out: never None
            guard = connection.info.get(GUARD)
            if guard is not None:
                deadline = time.monotonic() + guard.seconds  # no later than the guard's own
                guard.arm(cursor)
            try:
                started = time.perf_counter()
                cursor.execute(sql, parameters)
                for observe in self._observers:
                    observe(sql, parameters, time.perf_counter() - started)
                rows: list[Sequence[Any]] = cursor.fetchall()
            finally:
                if guard is not None:
                    guard.disarm()
            # The result set closed, the prepared statement kept (pyodbc: SQLMoreResults, then SQLFreeStmt
            # with SQL_CLOSE), so no driver holds the connection busy with it until its next run.
            next_set = getattr(cursor, "nextset", None)
            if next_set is not None:
                next_set()
            # A statement that ran past its deadline may still be cancelled by the watchdog: that
            # cursor is not run again (the cancel would stop whatever it runs next).
            keep = guard is None or time.monotonic() < deadline
            return rows
        except self._driver_error as exc:
            dead = self.backend.is_disconnect(exc)
            if dead:
                # SQLAlchemy's own reaction: this connection, and every one opened before it, is replaced.
                self.engine.pool._invalidate(connection, exc)
            raise sa.exc.DBAPIError.instance(
                sql, parameters, exc, self._driver_error, connection_invalidated=dead, dialect=self.engine.dialect
            ) from exc
        except BaseException as exc:
            if not isinstance(exc, Exception):  # interrupted mid-statement: the connection's state is unknown
                connection.invalidate(exc)
            raise
        finally:
            if keep:
                cursors[sql] = cursor  # the most recent last: the first is the one to drop
                if len(cursors) > CURSORS_KEPT:
                    _close_quietly(cursors.pop(next(iter(cursors))), self._driver_error)
            elif cursor is not None:
                _close_quietly(cursor, self._driver_error)
            connection.close()

    def scalar(self, statement: sa.Executable) -> Any:
        """The first column of the first row (None without rows), on the raw cursor as ``fetch_all``."""
        with self.errors():
            bound = self._statements.bind(statement)  # type: ignore[arg-type]  # every Executable here is a ClauseElement
            if bound is None:
                with self.engine.connect() as conn:
                    return conn.execute(statement).scalar()
            rows = self._fetch_raw(*bound)
            return rows[0][0] if rows else None

    def stream(
        self, statement: sa.Select[Any], batch_size: int = 2000, *, pages: PageAfter | None = None
    ) -> Iterator[Sequence[Any]]:
        """Yield rows as the driver delivers them, holding at most ``batch_size`` in memory.

        Runs on the export pool, never on the requests' one. The statement timeout does
        not apply: an export may rightly run for minutes. On a backend whose driver
        buffers whole results, ``pages`` (when given) reads the same rows in keyset
        batches of ``batch_size`` instead, each bounded by the statement timeout.
        Closing the generator early (a client that went away) releases the connection.
        """
        for batch in self.stream_batches(statement, batch_size, pages=pages):
            yield from batch

    def stream_batches(
        self, statement: sa.Select[Any], batch_size: int = 2000, *, pages: PageAfter | None = None
    ) -> Iterator[Sequence[Sequence[Any]]]:
        """``stream``, one driver fetch (``fetchmany(batch_size)`` or a keyset page) at a time.

        The next batch is fetched on a thread of the stream's own while the caller works on
        this one: the driver waits for the server (a psqlODBC ``FETCH``, a MariaDB page) with
        the GIL released, so the server produces rows while the last ones are decoded and
        sent. At most one batch is read ahead; every call on the stream's connection is made
        on that thread. Closing the generator waits for a fetch in flight, then releases the
        connection.

        A keyset page (``pages``) may hold more rows than a batch (the backend's ``page_rows``):
        it is handed on in slices of ``batch_size``, while the next page is read ahead.
        """
        source = self._batches(statement, batch_size, pages)
        fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bridgehead-fetch")
        pending = fetcher.submit(next, source, None)
        try:
            while (block := pending.result()) is not None:
                pending = fetcher.submit(next, source, None)
                if len(block) <= batch_size:
                    yield block
                else:  # a page, shortened as it goes: a slice handed on is let go of, not kept with the page
                    page = block if isinstance(block, list) else list(block)
                    del block
                    while page:
                        part = page[:batch_size]
                        del page[:batch_size]
                        yield part
                        del part
                    continue
                del block  # not held while the next one is awaited
        finally:
            wait([pending])  # a generator cannot be closed while it runs
            try:
                fetcher.submit(source.close).result()
            finally:
                fetcher.shutdown()

    def _batches(
        self, statement: sa.Select[Any], batch_size: int, pages: PageAfter | None
    ) -> Generator[Sequence[Sequence[Any]], None, None]:
        if pages is not None and self.backend.buffers_results:
            yield from self._stream_pages(pages, batch_size, max(batch_size, self.backend.page_rows))
            return
        streamable = self.backend.streamable(statement, self.engine.dialect)
        with self.errors(), self.export_engine.connect() as conn:
            conn = conn.execution_options(no_statement_timeout=True)
            # A rendered string goes to the driver as is: no parameter parsing, no '%' or ':' escaping.
            is_text = isinstance(streamable, str)
            result = conn.exec_driver_sql(streamable) if is_text else conn.execute(streamable)  # type: ignore[arg-type]
            # The driver's own rows, ``batch_size`` per fetch: no SQLAlchemy Row per row (the decoder
            # indexes them), no pre-fetched row, and never the cursor's ``arraysize`` (1 in pyodbc),
            # which an unsized ``partitions()`` of a textual statement fell back to: one row per batch.
            cursor, strategy = result.cursor, result.cursor_strategy
            try:
                while True:
                    try:
                        rows = cursor.fetchmany(batch_size)
                    except Exception as exc:
                        # What SQLAlchemy's own fetch does: wrap the driver's error (so ``errors()``
                        # classifies it) and invalidate a connection the backend finds dead.
                        strategy.handle_exception(result, cursor, exc)
                    if not rows:
                        return
                    yield rows
            finally:
                result.close()

    def _stream_pages(self, pages: PageAfter, first_rows: int, page_rows: int) -> Iterator[Sequence[Sequence[Any]]]:
        """Keyset pages: the first of ``first_rows`` (the first byte is not kept waiting), then ``page_rows`` each."""
        last: Sequence[Any] | None = None
        limit = first_rows
        with self.errors(), self.export_engine.connect() as conn:
            while True:
                rows = _driver_rows(conn.execute(pages(last, limit)))
                conn.rollback()  # no snapshot held open between batches (MariaDB's REPEATABLE READ)
                done = len(rows) < limit
                limit = page_rows
                if rows:
                    last = rows[-1]
                    yield rows
                del rows  # the page is the caller's alone while the next one is read
                if done:
                    return

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One write transaction: committed when the block ends, rolled back entirely on any error."""
        with self.errors(), self.engine.connect() as conn:
            conn.execution_options(bridgehead_write=True)
            with conn.begin():
                yield conn

    def run_transaction(self, work: Callable[[sa.Connection], T], attempts: int = 3) -> T:
        """Run ``work`` in one write transaction, rerunning it when the engine picks it as a deadlock victim.

        Engines break deadlocks by rolling one transaction back (SQL Server 1205, MariaDB
        1213, PostgreSQL 40P01); nothing of it was kept, so running it again is safe, and
        what the client wanted happens instead of an error it cannot act on.
        """
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as conn:
                    return work(conn)
            except TransactionConflict:
                if attempt == attempts:
                    raise
                log.info("transaction rerun after a deadlock", attempt=attempt)
                time.sleep(random.uniform(0, 0.02 * 2**attempt))  # full jitter: the two sides must not collide again
        raise AssertionError("unreachable")

    def ping(self) -> None:
        """Raise ``DatabaseUnavailable`` unless a trivial query answers (on a request connection)."""
        with self.errors(), self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def probe(self) -> None:
        """``ping`` on the readiness probe's own connection, so a busy request pool cannot fail it."""
        with self.errors(), self.probe_engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def inspector(self) -> sa.Inspector:
        """SQLAlchemy's schema inspector on the requests' pool; wrap its calls in ``errors()``."""
        with self.errors():
            return sa.inspect(self.engine)

    def dispose(self) -> None:
        for engine in (self.engine, self.export_engine, self.probe_engine):
            engine.dispose()
