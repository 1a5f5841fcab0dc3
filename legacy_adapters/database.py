"""The one door to the legacy database: engine, pool, timeouts, and error wrapping.

All calls block (pyodbc and sqlite3 do); the gateway runs them in worker threads.
Every driver error is classified once, by the backend, into a ``DatabaseError``
whose message is safe to show; the driver's own text is logged, never returned.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
import structlog

from legacy_adapters.dialects import get_backend
from legacy_adapters.exceptions import DatabaseError, DatabaseUnavailable, TransactionConflict

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import DatabaseConfig

__all__ = ("Database", "Prepared")

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


class Prepared:
    """A statement compiled once for one engine and run with fresh values each time.

    Building and compiling a Core statement per request costs more than the query
    itself on a keyed read; the shape of a get-by-key never changes, only its values.
    """

    def __init__(self, statement: sa.Select[Any], dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._positions = compiled.positiontup
        self._defaults = compiled.construct_params()

    def parameters(self, values: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        merged = {**self._defaults, **values}
        return tuple(merged[name] for name in self._positions) if self._positions is not None else merged


class Database:
    """A pooled engine for one legacy database."""

    def __init__(self, config: DatabaseConfig) -> None:
        self.config = config
        self.backend = get_backend(config.url)
        self.engine = sa.create_engine(config.url, **self.backend.engine_options(config))
        self.backend.install(self.engine, config)
        _ping_idle_connections(self.engine)

    @property
    def dialect(self) -> sa.Dialect:
        return self.engine.dialect

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except DatabaseError:
            raise
        except sa.exc.TimeoutError:
            raise DatabaseUnavailable("all database connections are busy") from None
        except (sa.exc.DBAPIError, sa.exc.OperationalError) as exc:
            error = self.backend.classify(exc)
            # The driver's words may name tables or values: they go to the log only.
            log.error("database error", kind=type(error).__name__, detail=str(getattr(exc, "orig", exc)))
            raise error from None

    def fetch_all(self, statement: sa.Executable) -> list[Sequence[Any]]:
        """Run ``statement`` and return every row as a tuple."""
        with self._errors(), self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(statement)]

    def prepare(self, statement: sa.Select[Any]) -> Prepared:
        return Prepared(statement, self.engine.dialect)

    def fetch_prepared(self, prepared: Prepared, values: dict[str, Any]) -> list[Sequence[Any]]:
        """Run a prepared statement with ``values`` for its named parameters."""
        with self._errors(), self.engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(prepared.sql, prepared.parameters(values))]

    def scalar(self, statement: sa.Executable) -> Any:
        with self._errors(), self.engine.connect() as conn:
            return conn.execute(statement).scalar()

    def stream(self, statement: sa.Select[Any], batch_size: int = 2000) -> Iterator[Sequence[Any]]:
        """Yield rows as the driver delivers them, holding at most ``batch_size`` in memory.

        The statement timeout does not apply: an export may rightly run for minutes.
        Closing the generator early (a client that went away) releases the connection.
        """
        streamable = self.backend.streamable(statement, self.engine.dialect)
        with self._errors(), self.engine.connect() as conn:
            conn = conn.execution_options(stream_results=True, yield_per=batch_size, no_statement_timeout=True)
            # A rendered string goes to the driver as is: no parameter parsing, no '%' or ':' escaping.
            is_text = isinstance(streamable, str)
            result = conn.exec_driver_sql(streamable) if is_text else conn.execute(streamable)  # type: ignore[arg-type]
            for partition in result.partitions():
                yield from partition

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One write transaction: committed when the block ends, rolled back entirely on any error."""
        with self._errors(), self.engine.connect() as conn:
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
        """Raise ``DatabaseUnavailable`` unless a trivial query answers."""
        with self._errors(), self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
