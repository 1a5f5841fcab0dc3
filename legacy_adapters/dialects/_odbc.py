"""What every backend reached through pyodbc shares: pool, timeouts, recovery, SQLSTATE classification.

A subclass names its engine family and fills in three hooks: how a session
gets its statement timeout (``_set_timeout``), which SQLSTATEs and native codes
mean what (``SQLSTATES``/``NATIVE_CODES``/``PHRASES``), and what a connection
string needs on top of the URL for each engine role (``_connection_string``:
client-side read and login deadlines, a streaming cursor for exports).
Everything else is here:

- SQLAlchemy's pool does the pooling, so pyodbc's own (driver-manager) pooling is off;
- a pool per role (``base.pool_size``), no overflow, ``connect_timeout_s`` to wait for one;
- a statement timeout is set per session and lifted only for a connection that a
  ``no_statement_timeout`` stream holds, then restored when the connection is checked in;
- an error classified as ``DatabaseUnavailable`` marks the connection (and the pool) invalid,
  so the next checkout reconnects: the gateway recovers by itself when the database returns.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from legacy_adapters.dialects.base import GUARD, pool_size
from legacy_adapters.exceptions import (
    DatabaseError,
    DatabaseUnavailable,
    IntegrityConflict,
    LoginRefused,
    SchemaDrift,
    StatementTimeout,
    TransactionConflict,
    ValueRefused,
)

if TYPE_CHECKING:
    from legacy_adapters.dialects.base import EngineRole
    from legacy_adapters.mapping.model import DatabaseConfig

__all__ = ("OdbcBackend", "Watchdog", "add_option", "native_code", "option_present", "split_server_port", "sqlstate")

try:
    import pyodbc
except ImportError:  # pragma: no cover - pyodbc is a dependency; libodbc may still be missing
    pyodbc = None
else:
    # SQLAlchemy pools connections; the driver manager's pool under it would keep dead ones.
    pyodbc.pooling = False

_ErrorType = type[DatabaseError]

_MESSAGES: dict[_ErrorType, str] = {
    DatabaseUnavailable: "the database is not available",
    LoginRefused: "the database refused the login (check the user and password in database.url)",
    StatementTimeout: "the database did not answer in time",
    IntegrityConflict: "the change conflicts with existing data",
    SchemaDrift: "a mapped table or column is missing from the database",
    TransactionConflict: "the transaction lost a deadlock and was rolled back",
    ValueRefused: "a value is out of range or not valid for its column in the database",
    DatabaseError: "the database could not run the query",
}

_LOGIN_PHRASES = (
    "password authentication failed",  # PostgreSQL
    "access denied for user",  # MariaDB / MySQL
    "login failed for user",  # SQL Server
    "no pg_hba.conf entry",
)
"""The server answered and refused the credentials: say so instead of "not available"."""

_NATIVE = re.compile(r"\((-?\d+)\) \(SQL\w+\)\s*$")


def sqlstate(error: BaseException) -> str:
    """The five-character SQLSTATE of a pyodbc error (``''`` when it has none)."""
    error = getattr(error, "orig", None) or error
    args: tuple[Any, ...] = getattr(error, "args", ())
    if len(args) >= 2 and isinstance(args[0], str) and len(args[0]) == 5:
        return args[0].upper()
    return ""


def native_code(error: BaseException) -> int | None:
    """The driver's native error number, from pyodbc's ``... (1205) (SQLExecDirectW)`` message tail."""
    error = getattr(error, "orig", None) or error
    args = getattr(error, "args", ())
    match = _NATIVE.search(str(args[-1])) if args else None
    return int(match.group(1)) if match else None


class _Deadlines:
    """One daemon thread that cancels every overdue statement of the process.

    A timer thread per statement cost a thread start and join on every query (a fifth of
    a keyed read's time when profiled), and a locked heap of deadlines still a few
    microseconds per statement. Here arming a ``Watchdog`` is one attribute write: the
    thread looks at every registered watchdog when the earliest deadline it saw falls due,
    and at the latest one shortest timeout after its last look (a statement armed after a
    look cannot fall due sooner), so a timeout that does not fire costs the statement nothing.
    """

    def __init__(self) -> None:
        self._dogs: weakref.WeakSet[Watchdog] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._shortest = math.inf
        self._thread: threading.Thread | None = None

    def register(self, dog: Watchdog) -> None:
        with self._lock:
            self._dogs.add(dog)
            if dog.seconds < self._shortest:
                self._shortest = dog.seconds
                self._changed.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bridgehead-deadlines", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        fired: dict[Watchdog, tuple[float, Any]] = {}  # cancelled, still armed: not cancelled again
        while True:
            now = time.monotonic()
            with self._lock:
                dogs = list(self._dogs)
                wake = now + self._shortest
            fired = {dog: armed for dog, armed in fired.items() if dog.armed is armed}
            for dog in dogs:
                armed = dog.armed  # one read: the worker may re-arm it meanwhile
                if armed is None or fired.get(dog) is armed:
                    continue
                if armed[0] > now:
                    wake = min(wake, armed[0])
                    continue
                fired[dog] = armed
                _cancel(armed[1])  # no lock held: the driver may take its time
            self._changed.wait(None if wake == math.inf else max(0.0, wake - time.monotonic()))
            self._changed.clear()


_DEADLINES = _Deadlines()


class Watchdog:
    """Cancels a connection's running statement once its deadline passes (``cursor.cancel()``).

    For drivers without a server-side statement timeout: SQLCancel from another
    thread makes the server (or SQLite's engine) stop the statement. One per
    connection; ``arm``/``disarm`` are single attribute writes (``_Deadlines``).
    """

    __slots__ = ("__weakref__", "armed", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed: tuple[float, Any] | None = None
        _DEADLINES.register(self)

    def arm(self, cursor: Any) -> None:
        self.armed = (time.monotonic() + self.seconds, cursor)

    def disarm(self) -> None:
        self.armed = None


def _cancel(cursor: Any) -> None:
    # The statement may have ended and its cursor closed just before the deadline: nothing to cancel.
    with contextlib.suppress(Exception):
        cursor.cancel()


class OdbcBackend:
    """Base of the pyodbc backends (SQL Server, PostgreSQL, MariaDB/MySQL, SQLite through ODBC)."""

    name: ClassVar[str]
    SQLSTATES: ClassVar[dict[str, _ErrorType]] = {
        "08001": DatabaseUnavailable,  # cannot connect
        "08002": DatabaseUnavailable,
        "08003": DatabaseUnavailable,  # connection does not exist (closed)
        "08004": DatabaseUnavailable,  # server rejected the connection
        "08007": DatabaseUnavailable,
        "08S01": DatabaseUnavailable,  # communication link failure
        "28000": LoginRefused,  # invalid authorization specification
        "HYT00": StatementTimeout,
        "HYT01": DatabaseUnavailable,  # connection timeout
        "57014": StatementTimeout,
        "40001": TransactionConflict,  # deadlock victim / serialization failure: rerun the transaction
        "23000": IntegrityConflict,
        "22001": ValueRefused,  # string data, right truncation
        "22003": ValueRefused,  # numeric value out of range
        "22007": ValueRefused,  # invalid datetime format
        "22008": ValueRefused,  # datetime field overflow
        "22018": ValueRefused,  # invalid character value for cast
        "42S02": SchemaDrift,
        "42S22": SchemaDrift,
    }
    """SQLSTATE (exact, or its two-character class) -> error; a subclass extends it."""
    NATIVE_CODES: ClassVar[dict[int, _ErrorType]] = {}
    """The driver's native error numbers, checked before the SQLSTATE (HY000 hides many)."""
    PHRASES: ClassVar[tuple[tuple[str, _ErrorType], ...]] = (
        ("communication link failure", DatabaseUnavailable),
        ("server closed the connection", DatabaseUnavailable),
        ("connection refused", DatabaseUnavailable),
        ("could not connect", DatabaseUnavailable),
        ("no connection to the server", DatabaseUnavailable),
        ("the connection is closed", DatabaseUnavailable),
        ("attempt to use a closed connection", DatabaseUnavailable),
        ("the cursor's connection has been closed", DatabaseUnavailable),
    )
    """Lower-case message fragments, last resort for drivers that answer HY000 to everything."""
    watchdog: ClassVar[bool] = False
    """Cancel statements from a timer thread instead of a server-side timeout."""
    buffers_results: ClassVar[bool] = False
    page_rows: ClassVar[int] = 0

    # -- engine ------------------------------------------------------------------------------------

    def engine_options(self, config: DatabaseConfig, role: EngineRole = "requests") -> dict[str, Any]:
        return {
            # pyodbc's connect(timeout=) is the login timeout.
            "connect_args": {"timeout": max(1, round(config.connect_timeout_s))},
            "pool_size": pool_size(config, role),
            "max_overflow": 0,
            "pool_timeout": config.connect_timeout_s,
            "poolclass": sa.pool.QueuePool,
        }

    def install(self, engine: sa.Engine, config: DatabaseConfig, role: EngineRole = "requests") -> None:
        timeout = config.statement_timeout_s
        backend = self

        @sa.event.listens_for(engine, "do_connect")
        def _connection_string(_dialect: Any, _rec: Any, cargs: list[Any], _cparams: dict[str, Any]) -> None:
            if cargs and isinstance(cargs[0], str):
                cargs[0] = backend._connection_string(cargs[0], config, role)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, record: Any) -> None:
            backend._on_connect(dbapi_conn, config)
            if not backend.watchdog:
                backend._set_timeout(dbapi_conn, timeout)
            record.info["bh_unbounded"] = False
            if backend.watchdog:
                record.info[GUARD] = Watchdog(timeout)

        @sa.event.listens_for(engine, "set_connection_execution_options")
        def _options(conn: sa.Connection, options: dict[str, Any]) -> None:
            # Called before the statement's cursor exists, so a cursor-level timeout can still change.
            if options.get("bridgehead_write"):
                record = conn.connection._connection_record
                backend._write_mode(conn.connection.dbapi_connection, True)
                if record is not None:
                    record.info["bh_write"] = True
            if options.get("no_statement_timeout"):
                record = conn.connection._connection_record
                if record is not None and not record.info.get("bh_unbounded"):
                    if not backend.watchdog:
                        backend._set_timeout(conn.connection.dbapi_connection, None)
                    record.info["bh_unbounded"] = True

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _arm(conn: sa.Connection, cursor: Any, _s: Any, _p: Any, _context: Any, _many: bool) -> None:
            record = conn.connection._connection_record
            dog = record.info.get(GUARD) if record is not None else None
            if dog is not None:
                if record.info.get("bh_unbounded"):
                    dog.disarm()
                else:
                    dog.arm(cursor)

        @sa.event.listens_for(engine, "checkin")
        def _restore(dbapi_conn: Any, record: Any) -> None:
            dog = record.info.get(GUARD)
            if dog is not None:
                dog.disarm()
            if dbapi_conn is not None and record.info.pop("bh_write", False):
                try:
                    backend._write_mode(dbapi_conn, False)
                except Exception:
                    record.invalidate()
            if dbapi_conn is None or not record.info.get("bh_unbounded"):
                return
            record.info["bh_unbounded"] = False
            if not backend.watchdog:
                try:
                    backend._set_timeout(dbapi_conn, timeout)
                except Exception:  # a dead link: the next pre-ping replaces the connection
                    record.invalidate()

        @sa.event.listens_for(engine, "handle_error")
        def _disconnect(context: sa.engine.ExceptionContext) -> None:
            # A cancelled statement or a deadlock leaves a healthy connection (mssql+pyodbc would
            # otherwise drop the whole pool on HYT00); a lost link must be replaced.
            context.is_disconnect = backend.is_disconnect(context.original_exception)

    # -- hooks ---------------------------------------------------------------------------------------

    def _connection_string(self, connection_string: str, config: DatabaseConfig, role: EngineRole = "requests") -> str:
        """The ODBC connection string SQLAlchemy built, with what this backend adds to it for ``role``."""
        return connection_string

    def _on_connect(self, dbapi_conn: Any, config: DatabaseConfig) -> None:
        """Session set-up of a new connection (encodings, converters, read-only)."""

    def _set_timeout(self, dbapi_conn: Any, seconds: float | None) -> None:
        """Give the session a statement timeout; ``None`` lifts it."""

    def _write_mode(self, dbapi_conn: Any, on: bool) -> None:
        """Prepare a connection for ``Database.transaction()`` (``on``) and undo it at check-in."""

    # -- errors --------------------------------------------------------------------------------------

    KEEPS_CONNECTION: ClassVar[frozenset[str]] = frozenset({"40001"})
    """SQLSTATEs whose connection is still sound though the statement failed (a deadlock victim)."""

    def is_disconnect(self, error: BaseException) -> bool:
        """Whether the connection that raised ``error`` is dead and the pool must reconnect."""
        if sqlstate(error) in self.KEEPS_CONNECTION:
            return False
        return self._kind(error) is DatabaseUnavailable

    def streamable(self, statement: sa.Select[Any], dialect: sa.Dialect) -> sa.Executable | str:
        return statement

    def classify(self, error: BaseException) -> DatabaseError:
        kind = self._kind(error)
        return kind(_MESSAGES[kind])

    def _kind(self, error: BaseException) -> _ErrorType:
        if isinstance(error, sa.exc.TimeoutError):
            return DatabaseUnavailable
        code = native_code(error)
        if code is not None and code in self.NATIVE_CODES:
            return self.NATIVE_CODES[code]
        text = str(getattr(error, "orig", None) or error).lower()
        # Before the SQLSTATE: psqlODBC reports a refused password as 08001, like a refused connection.
        if any(phrase in text for phrase in _LOGIN_PHRASES):
            return LoginRefused
        state = sqlstate(error)
        if state in self.SQLSTATES:
            return self.SQLSTATES[state]
        if state[:2] == "28":
            return LoginRefused
        for phrase, kind in self.PHRASES:
            if phrase in text:
                return kind
        if state[:2] == "08":
            return DatabaseUnavailable
        if state[:2] == "23":
            return IntegrityConflict
        if state[:2] == "22":  # data exception: a value the caller sent, never a server fault
            return ValueRefused
        return DatabaseError


def option_present(connection_string: str, key: str) -> bool:
    """Whether an ODBC connection string already sets ``key`` (case-insensitive)."""
    return re.search(rf"(?:^|;)\s*{re.escape(key)}\s*=", connection_string, re.IGNORECASE) is not None


def add_option(connection_string: str, key: str, value: str) -> str:
    """``connection_string`` with ``key=value`` appended unless the user already set ``key``."""
    if option_present(connection_string, key):
        return connection_string
    return f"{connection_string.rstrip(';')};{key}={value}"


def split_server_port(connection_string: str) -> str:
    """``Server=host,5432`` (SQL Server's form, which SQLAlchemy writes) -> ``Server=host;Port=5432``."""
    return re.sub(
        r"(?i)(^|;)(\s*server\s*=\s*)([^;,{}]+),(\d+)",
        lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)};Port={m.group(4)}",
        connection_string,
    )
