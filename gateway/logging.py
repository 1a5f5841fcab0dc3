"""Structured logging: one structlog pipeline, the request id on every line, secrets redacted.

``redact_secrets`` runs on every event, so a token, password or connection
string that reaches a log call by accident is masked before it is written.
"""

from __future__ import annotations

import atexit
import collections
import contextvars
import functools
import logging
import os
import re
import select
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from typing import IO, Any, Literal

import msgspec
import structlog

from legacy_adapters.redaction import is_secret_key, may_hold_secret, redact_value

__all__ = (
    "LOG_COPY_ENV", "AccessLine", "LogFormat", "LogSink", "access_line", "configure_logging", "drain_logs",
    "log_request", "redact_secrets",
)  # fmt: skip

_PASS_KEY = re.compile(r"pass", re.I)
"""Log keys are masked on "pass" anywhere too (``db_pass``, ``smtp_pass``), on top of every key the
shared redaction names a secret (``is_secret_key``: ``private_key``, ``client_secret``, ...). The
shared one leaves "pass" alone to keep ``snapshot_pass`` in stored text; a log line can spare it."""


_maybe_secret = may_hold_secret
"""Whether the redaction could change ``text`` (``legacy_adapters.redaction``, the one the state
store's text goes through too): a few substring tests, and one search for the secrets this process
knows, instead of the substitutions, for the common value that holds nothing secret-looking."""


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    return is_secret_key(key) or _PASS_KEY.search(key) is not None


def redact_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask values under secret-looking keys and secret-looking substrings anywhere."""
    for key, value in list(event.items()):
        event[key] = "[redacted]" if _secret_key(key) and key != "event" else redact_value(value, _secret_key)
    return event


_LINE_GUESS = 256
"""Bytes a queued request line is counted as before it is encoded (they run 200-300)."""


class LogSink:
    """A thread-safe, buffered byte sink: log lines leave in blocks from a thread of their own.

    A flushed write per request line cost about a fifth of the throughput of ``GET /v1/jobs/{key}``.
    A line is appended to a buffer under a lock (no system call on the event loop, which would
    hand the GIL to a worker thread and queue for it back); the sink's thread writes the buffer
    every ``interval_s`` (an operator tailing the log sees a line within a second), as soon as it
    passes ``limit`` bytes, and at close or ``drain`` (the app's last shutdown hook, as uvicorn's
    re-raised SIGTERM skips ``atexit``: a graceful stop loses no line). Only a
    writer that outruns the thread by 8 times ``limit`` writes a block itself, and so does every
    line after ``close``.

    The request line is cheaper still: ``write_later`` queues its fields, and whoever writes the
    next block (the sink's thread, as a rule) encodes the queued lines into it, in their order,
    before any line written after them. The event loop then pays ~1.4 µs a line (a tuple and a
    deque append). Measured with ``bench.cpu --compare-log`` on a get of ~275 µs of CPU, the line
    cost 18 µs encoded inside its request and 6 µs queued, though the encoder takes 1.7 µs a line
    in a loop either way: the queue saves the per-line call, lock and cache misses.

    Several worker processes share one stderr: into a pipe (docker, journald, a supervisor)
    each ``write()`` carries whole lines and at most ``PIPE_BUF`` bytes, which the kernel
    never interleaves with another process's write; a regular file gets the block in one
    ``write()``. A line longer than ``PIPE_BUF`` goes alone, in one write.
    """

    def __init__(
        self, stream: IO[bytes], *, limit: int = 64 * 1024, interval_s: float = 0.5, copy: IO[bytes] | None = None
    ) -> None:
        self._outs = [_Out(stream)] + ([_Out(copy)] if copy is not None else [])
        self._copy = copy
        self._limit = limit
        self._later_limit = max(1, limit // _LINE_GUESS)
        self._buffer = bytearray()  # whole lines; msgspec encodes the request line straight into it
        # Lines to encode at the next block: (encode, fields). A deque, so that appending needs no lock:
        # whoever drains it pops from the left, and a line appended meanwhile is drained too or waits.
        self._later: collections.deque[tuple[Callable[[Any, bytearray], None], Any]] = collections.deque()
        self._asked = False  # the sink's thread has been woken for the block now buffered
        self._lock = threading.Lock()  # the buffer
        self._writing = threading.Lock()  # one block at a time, in the order they were taken
        self._wake = threading.Event()
        self._closed = False
        self._through = False  # every line written at once: the process is about to stop
        self._flusher = threading.Thread(
            target=self._flush_every, args=(interval_s,), name="bridgehead-log", daemon=True
        )
        self._flusher.start()
        atexit.register(self.close)

    def write(self, line: bytes) -> None:
        with self._lock:
            if self._later:
                self._encode_later()
            self._buffer += line
            size = len(self._buffer)
        if size >= self._limit or self._closed or self._through:
            self._written(size)

    def write_later(self, encode: Callable[[Any, bytearray], None], fields: Any) -> None:
        """A line that ``encode(fields, buffer)`` appends to ``buffer``, whole, when the next block is written.

        ``encode`` must not raise: it runs on the sink's thread, for lines of requests long answered.
        """
        later = self._later
        later.append((encode, fields))
        if len(later) >= self._later_limit or self._closed or self._through:
            self._written(len(later) * _LINE_GUESS)

    def _encode_later(self) -> None:
        """Encode the queued lines into the buffer, oldest first (the buffer's lock held)."""
        later, buffer = self._later, self._buffer
        while True:
            try:
                encode, fields = later.popleft()
            except IndexError:
                return
            encode(fields, buffer)

    def write_encoded(self, line: Any) -> None:
        """``write(_JSON.encode(line) + b"\\n")``, without the two intermediate bytes objects."""
        with self._lock:
            if self._later:
                self._encode_later()
            buffer = self._buffer
            start = len(buffer)
            try:
                _JSON.encode_into(line, buffer, -1)
            except BaseException:
                del buffer[start:]  # no half line left behind for the next one to follow
                raise
            buffer.append(10)  # b"\n"
            size = len(buffer)
        if size >= self._limit or self._closed or self._through:
            self._written(size)

    def _written(self, size: int) -> None:
        """After a line that filled a block, or once the sink is closing: who writes the buffer now."""
        if self._closed or self._through or size >= 8 * self._limit:
            self.flush()
        elif not self._asked:  # once per block: the thread may take a while to get the GIL
            self._asked = True
            self._wake.set()  # the sink's thread writes it

    def flush(self) -> None:
        with self._writing:
            with self._lock:
                if self._later:
                    self._encode_later()
                if not self._buffer:
                    return
                data, self._buffer, self._asked = self._buffer, bytearray(), False
            for out in self._outs:  # outside the buffer's lock: writers append to the new one meanwhile
                out.write(data)

    def drain(self) -> None:
        """Write what is buffered, and every later line as it comes (the sink stays open).

        For a server stopping on SIGTERM: uvicorn re-raises the signal once it has shut down, and
        its default action ends the process without ``atexit``, so a line still buffered then
        would be lost (the last half second of a worker's requests, seen in a two-worker test).
        """
        self._through = True
        self.flush()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()
        if self._copy is not None:
            self._outs = self._outs[:1]
            self._copy.close()
            self._copy = None

    def _flush_every(self, interval_s: float) -> None:
        while not self._closed:
            woken = self._wake.wait(interval_s)
            self._wake.clear()
            if woken and len(self._buffer) + len(self._later) * _LINE_GUESS < self._limit and not self._closed:
                continue  # a late call for a block a writer has already written
            self.flush()


class _Out:
    """One destination of a ``LogSink``: a file descriptor written directly, or any byte stream."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.fd: int | None = None
        self.block = 0  # 0: the whole buffer in one write (a regular file)
        try:
            fd = stream.fileno()
            mode = os.fstat(fd).st_mode
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
            return
        self.fd = fd
        if not stat.S_ISREG(mode):  # a pipe, socket or terminal: whole lines, PIPE_BUF at a time
            self.block = select.PIPE_BUF

    def write(self, data: bytes | bytearray) -> None:
        try:
            if self.fd is None:
                self.stream.write(data)
                self.stream.flush()
                return
            self.stream.flush()  # anything written through the stream itself goes first
            for block in _blocks(data, self.block):
                _write_all(self.fd, block)
        except (OSError, ValueError):  # a closed stderr at interpreter exit: nothing left to tell
            pass


def _write_all(fd: int, block: bytes | bytearray) -> None:
    view = memoryview(block)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:  # a non-blocking pipe that is full: wait until it drains
            select.select([], [fd], [], 1.0)


def _blocks(data: bytes | bytearray, size: int) -> Iterator[bytes | bytearray]:
    """``data`` (whole lines) cut at line ends into blocks of at most ``size`` bytes (0: one block);
    a line longer than ``size`` is a block of its own."""
    if size <= 0 or len(data) <= size:
        yield data
        return
    start, end = 0, len(data)
    while start < end:
        if end - start <= size:
            yield data[start:]
            return
        cut = data.rfind(b"\n", start, start + size)
        if cut < 0:  # one line longer than a block
            cut = data.find(b"\n", start + size)
            if cut < 0:
                yield data[start:]
                return
        yield data[start : cut + 1]
        start = cut + 1


class _SinkLogger:
    """The structlog logger writing rendered lines (bytes or text) into a ``LogSink``."""

    def __init__(self, sink: LogSink) -> None:
        self._sink = sink

    def msg(self, message: bytes | str) -> None:
        data = message if isinstance(message, bytes) else message.encode("utf-8", "replace")
        self._sink.write(data + b"\n")

    log = debug = info = warn = warning = error = critical = exception = fatal = failure = err = msg


def _json_line(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> bytes:
    # msgspec renders a line several times faster than json.dumps; str() covers odd values.
    return _JSON.encode(event)


_JSON = msgspec.json.Encoder(enc_hook=str)

LogFormat = Literal["auto", "json", "console"]
_sink: LogSink | None = None


def drain_logs() -> None:
    """The app's last shutdown hook: every buffered line written now, and later ones at once."""
    if _sink is not None:
        _sink.drain()


LOG_COPY_ENV = "BRIDGEHEAD_LOG_COPY"
"""A file every process also appends its (redacted) log lines to: support bundles, and the test
suite's check that no secret it used ever reached a log."""


def configure_logging(
    level: str = "info", *, json: bool = False, log_format: LogFormat | None = None, stream: IO[bytes] | None = None
) -> None:
    """Set up structlog for the process.

    ``log_format`` ``auto`` (the default of ``serve``) writes key=value lines for a person at a
    terminal and one JSON object per line otherwise (a collector, journald, docker logs);
    ``json=True`` is the older spelling of ``log_format="json"``.
    """
    global _sink
    fmt = log_format or ("json" if json else "console")
    out = stream or sys.stderr.buffer
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    renderer: Any = (
        _json_line
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    global _fast_access
    if _sink is not None:
        _sink.close()
    copy_path = os.environ.get(LOG_COPY_ENV)
    _sink = LogSink(out, copy=open(copy_path, "ab") if copy_path else None)  # noqa: SIM115 (lives with the sink)
    sink = _sink
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _add_timestamp,
        # Tracebacks become plain text first (no local variables, which could hold a token),
        # so the redaction below sees them too.
        structlog.processors.format_exc_info,
        redact_secrets,
        renderer,
    ]
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=processors,
        # Disabled levels are no-op methods: a debug call costs nothing when the level is info.
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=lambda *_args: _SinkLogger(sink),
        cache_logger_on_first_use=False,
    )
    _fast_access = _FastAccess(processors, sink, on=numeric_level <= logging.INFO) if fmt == "json" else None


class _FastAccess:
    """The request line of the JSON pipeline, written without structlog's per-call machinery.

    The same line the pipeline would write (the fields, ``event``, the bound context, level,
    timestamp, redacted, msgspec-rendered), for a fraction of the cost: the access line is the
    one log call every request makes. Used only while the pipeline it copies is the
    configured one (a test's ``capture_logs`` swaps it out and sees ordinary calls).
    """

    def __init__(self, processors: list[Any], sink: LogSink, *, on: bool) -> None:
        self.processors = list(processors)
        self.sink = sink
        self.on = on

    def current(self) -> bool:
        # By content: structlog.testing.capture_logs swaps the processors inside the same list.
        # (List equality compares the processors by identity first, in C.)
        return bool(_configured_processors() == self.processors)

    def write(self, fields: dict[str, Any]) -> None:
        event = fields
        event["event"] = "request"
        for key, value in _bound_context().items():
            event.setdefault(key, value)
        event["level"] = "info"
        event["timestamp"] = utc_stamp()
        # A cheap look at every text value (and at the keys) decides whether the full redaction has
        # anything to do; a false alarm only costs the full pass.
        if not _PLAIN_KEYS.issuperset(event) or _maybe_secret("\n".join(v for v in event.values() if type(v) is str)):
            redact_secrets(None, "info", event)
        self.sink.write_encoded(event)

    def line(
        self,
        request_id: str,
        method: Any,
        path: Any,
        route: Any,
        status: Any,
        ms: float,
        subject: Any,
        rows: Any,
        interrupted: bool,
    ) -> None:
        """``write`` for the access line's own fields, in their order, without building them twice."""
        if _has_bound_context() or interrupted:  # rare: the general path keeps the pipeline's key order
            self.write(_access_fields(request_id, method, path, route, status, ms, subject, rows, interrupted))
            return
        # Only the request id is bound (and the line carries it already): the fields need no merge,
        # and their keys are all plain, so only the text values can hold a secret. Of those, the route
        # is a template of ours and the request id one that ``gateway.request_id`` made or accepted
        # (it refuses a client's id that may hold a secret): the path, the subject and a method
        # outside HTTP's own are what a client chose.
        # Encoded later, with the block it goes out in (``LogSink.write_later``): the time is taken now.
        self.sink.write_later(
            _encode_access, (request_id, method, path, route, status, ms, subject, rows, time.time_ns())
        )


def _encode_access(fields: tuple[Any, ...], buffer: bytearray) -> None:
    """Append one request line (``_FastAccess.line``'s fields and its time) to ``buffer``, redacted."""
    request_id, method, path, route, status, ms, subject, rows, at = fields
    stamp = _stamp_at(at)
    start = len(buffer)
    try:
        if _maybe_secret(f"{path}\n{subject}" if method in _HTTP_METHODS else f"{path}\n{subject}\n{method}"):
            event = {"request_id": request_id, "method": method, "path": path, "route": route, "status": status,
                     "ms": ms, "subject": subject, "rows": rows, "event": "request", "level": "info",
                     "timestamp": stamp}  # fmt: skip
            _JSON.encode_into(redact_secrets(None, "info", event), buffer, -1)
        else:
            line = _AccessLine(request_id, method, path, route, status, ms, subject, rows, "request", "info", stamp)
            _JSON.encode_into(line, buffer, -1)
    except Exception as exc:  # on the sink's thread: the line is lost, not the thread, and it says so
        del buffer[start:]
        failed = {"request_id": str(request_id), "event": "request line not written", "error": type(exc).__name__,
                  "level": "error", "timestamp": stamp}  # fmt: skip
        _JSON.encode_into(failed, buffer, -1)
    buffer.append(10)  # b"\n"


_HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"))


class _AccessLine(msgspec.Struct):
    """The request line's keys in the pipeline's order: msgspec writes a Struct's keys pre-encoded
    (a third cheaper than the same dict)."""

    request_id: str
    method: Any
    path: Any
    route: Any
    status: Any
    ms: float
    subject: Any
    rows: Any
    event: str
    level: str
    timestamp: str


_STRUCTLOG_CONFIG: Any = getattr(getattr(structlog, "_config", None), "_CONFIG", None)
"""structlog's own configuration object, read directly: ``get_config()`` builds a dict on every call."""


def _configured_processors() -> Any:
    """``structlog.get_config()["processors"]``, the same list."""
    if _STRUCTLOG_CONFIG is None:
        return structlog.get_config()["processors"]
    return _STRUCTLOG_CONFIG.default_processors


_CONTEXT_VARS: dict[str, contextvars.ContextVar[Any]] | None = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
"""structlog's own table of its context variables (one per key ever bound in this process). Read
directly: ``get_contextvars()`` copies the context and walks every variable in it, structlog's or
not, on every call."""
_REQUEST_ID_KEY = f"{structlog.contextvars.STRUCTLOG_KEY_PREFIX}request_id"


def _bound_context() -> dict[str, Any]:
    """What ``structlog.contextvars.get_contextvars()`` returns, without walking the whole context."""
    if _CONTEXT_VARS is None:
        return structlog.contextvars.get_contextvars()
    prefix = len(structlog.contextvars.STRUCTLOG_KEY_PREFIX)
    bound = {}
    for name, var in list(_CONTEXT_VARS.items()):
        value = var.get()
        if value is not Ellipsis:
            bound[name[prefix:]] = value
    return bound


def _has_bound_context() -> bool:
    """Whether anything but the request id is bound (structlog marks an unbound key with ``...``)."""
    if _CONTEXT_VARS is None:
        return bool(structlog.contextvars.get_contextvars().keys() - {"request_id"})
    if len(_CONTEXT_VARS) == 1 and _REQUEST_ID_KEY in _CONTEXT_VARS:  # a server binds nothing else
        return False
    for name, var in list(_CONTEXT_VARS.items()):  # noqa: SIM110 (a loop: no generator per request)
        if name != _REQUEST_ID_KEY and var.get() is not Ellipsis:
            return True
    return False


# The request line's own keys, none secret-looking: only another key (a bound context variable's) is checked.
_PLAIN_KEYS = frozenset(
    key
    for key in ("request_id", "method", "path", "route", "status", "ms", "subject", "rows", "interrupted", "event",
                "level", "timestamp")
    if not _secret_key(key)
)  # fmt: skip

_stamp: tuple[int, str] = (-1, "")
"""The second last formatted and its text: one tuple, so a thread never sees one without the other."""


def utc_stamp() -> str:
    """Now in UTC as ISO 8601 with microseconds and ``Z``: ``2026-12-01T14:22:28.177741Z``.

    The date and time of day are formatted once per second; within a second only the
    microseconds are. (structlog's ``TimeStamper(fmt="iso", utc=True)`` wrote the same text,
    except that it dropped the fraction when it was exactly zero.)
    """
    return _stamp_at(time.time_ns())


def _stamp_at(ns: int) -> str:
    """``utc_stamp`` of ``ns`` nanoseconds since the epoch (``time.time_ns()``)."""
    global _stamp
    second, micros = divmod(ns // 1000, 1_000_000)
    done, prefix = _stamp
    if second != done:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        _stamp = (second, prefix)
    return "%s%06dZ" % (prefix, micros)  # noqa: UP031 (a third cheaper than the f-string's format spec here)


def _add_timestamp(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["timestamp"] = utc_stamp()
    return event


_fast_access: _FastAccess | None = None
_access_log = structlog.get_logger("bridgehead.access")


def log_request(**fields: Any) -> None:
    """The access-log line of one request (``event="request"`` at info)."""
    fast = _fast_access
    if fast is not None and fast.current():
        if fast.on:
            fast.write(fields)
        return
    _access_log.info("request", **fields)


AccessLine = Callable[[str, Any, Any, Any, Any, float, Any, Any, bool], None]
"""``(request_id, method, path, route, status, ms, subject, rows, interrupted)``: writes one request's line."""


def access_line() -> AccessLine | None:
    """What writes the request line now, or ``None`` when that line is off (a level above info):
    asked before the line's fields are gathered, so a disabled line costs no work per request."""
    fast = _fast_access
    if fast is not None and fast.current():
        return fast.line if fast.on else None
    return _pipeline_line


def _pipeline_line(
    request_id: str,
    method: Any,
    path: Any,
    route: Any,
    status: Any,
    ms: float,
    subject: Any,
    rows: Any,
    interrupted: bool,
) -> None:
    """The request line through whatever structlog pipeline is configured (a console, a test's capture)."""
    fields = _access_fields(request_id, method, path, route, status, ms, subject, rows, interrupted)
    _access_log.info("request", **fields)


def _access_fields(
    request_id: str,
    method: Any,
    path: Any,
    route: Any,
    status: Any,
    ms: float,
    subject: Any,
    rows: Any,
    interrupted: bool,
) -> dict[str, Any]:
    """The request line's fields in their order (both line writers: the keys must not drift apart)."""
    fields = {"request_id": request_id, "method": method, "path": path, "route": route, "status": status, "ms": ms,
              "subject": subject, "rows": rows}  # fmt: skip
    if interrupted:
        fields["interrupted"] = True
    return fields
