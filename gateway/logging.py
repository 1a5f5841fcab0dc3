"""Structured logging: one structlog pipeline, the request id on every line, secrets redacted.

``redact_secrets`` runs on every event, so a token, password or connection
string that reaches a log call by accident is masked before it is written.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import IO, Any, Literal

import msgspec
import structlog

__all__ = ("LOG_COPY_ENV", "LogFormat", "LogSink", "configure_logging", "log_request", "redact_secrets")

_SECRET_KEYS = re.compile(r"(pass(word)?|pwd|secret|token|authorization|api[_-]?key|credential)", re.I)
_PATTERNS = (
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"(?i)\b(pwd|password)=([^;&\s]+)"), r"\1=[redacted]"),
    (re.compile(r"(?i)(://[^:/@\s]+:)([^@\s]+)@"), r"\1[redacted]@"),
)


# Matches wherever any of _PATTERNS could: one search instead of four substitutions for the
# common value that holds nothing secret-looking (every field of every request line).
_MAYBE_SECRET = re.compile(r"(?i)bearer\s|eyJ|pwd=|password=|://")


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    return _SECRET_KEYS.search(key) is not None


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        if _MAYBE_SECRET.search(value) is None:
            return value
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {k: "[redacted]" if _secret_key(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def redact_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask values under secret-looking keys and secret-looking substrings anywhere."""
    for key, value in list(event.items()):
        event[key] = "[redacted]" if _secret_key(key) and key != "event" else _scrub(value)
    return event


class LogSink:
    """A thread-safe, buffered byte sink: log lines are written in blocks, not one flush per line.

    A flushed write per request line cost about a fifth of the throughput of ``GET /v1/jobs/{key}``;
    lines are flushed when the buffer passes ``limit`` bytes, every ``interval_s`` from a daemon
    thread, and at exit, so an operator tailing the log sees a line within a second.
    """

    def __init__(
        self, stream: IO[bytes], *, limit: int = 64 * 1024, interval_s: float = 0.5, copy: IO[bytes] | None = None
    ) -> None:
        self._stream = stream
        self._copy = copy
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._flusher = threading.Thread(target=self._flush_every, args=(interval_s,), daemon=True)
        self._flusher.start()
        atexit.register(self.close)

    def write(self, line: bytes) -> None:
        with self._lock:
            self._chunks.append(line)
            self._size += len(line)
            if self._size < self._limit:
                return
            data, self._chunks, self._size = b"".join(self._chunks), [], 0
        self._write(data)

    def flush(self) -> None:
        with self._lock:
            if not self._chunks:
                return
            data, self._chunks, self._size = b"".join(self._chunks), [], 0
        self._write(data)

    def close(self) -> None:
        self._stopped.set()
        self.flush()
        if self._copy is not None:
            self._copy.close()
            self._copy = None

    def _write(self, data: bytes) -> None:
        for out in (self._stream, self._copy):
            if out is None:
                continue
            try:
                out.write(data)
                out.flush()
            except (OSError, ValueError):  # a closed stderr at interpreter exit: nothing left to tell
                pass

    def _flush_every(self, interval_s: float) -> None:
        while not self._stopped.wait(interval_s):
            self.flush()


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
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        stamp,
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
    _fast_access = _FastAccess(processors, sink, stamp, on=numeric_level <= logging.INFO) if fmt == "json" else None


class _FastAccess:
    """The request line of the JSON pipeline, written without structlog's per-call machinery.

    The same line the pipeline would write (the fields, ``event``, the bound context, level,
    timestamp, redacted, msgspec-rendered), for a third of the cost: the access line is the
    one log call every request makes. Used only while the pipeline it copies is the
    configured one (a test's ``capture_logs`` swaps it out and sees ordinary calls).
    """

    def __init__(self, processors: list[Any], sink: LogSink, stamp: Any, *, on: bool) -> None:
        self.processors = tuple(processors)
        self.sink = sink
        self.stamp = stamp
        self.on = on

    def current(self) -> bool:
        # By content: structlog.testing.capture_logs swaps the processors inside the same list.
        processors = structlog.get_config()["processors"]
        return len(processors) == len(self.processors) and all(
            a is b for a, b in zip(processors, self.processors, strict=True)
        )

    def write(self, fields: dict[str, Any]) -> None:
        event = fields
        event["event"] = "request"
        for key, value in structlog.contextvars.get_contextvars().items():
            event.setdefault(key, value)
        event["level"] = "info"
        self.stamp(None, "info", event)
        # One search over every text value (and the cached key checks) decides whether the full
        # redaction has anything to do; a false alarm only costs the full pass.
        text = "\n".join(v for v in event.values() if isinstance(v, str))
        if _MAYBE_SECRET.search(text) is not None or any(_secret_key(k) for k in event if k != "event"):
            redact_secrets(None, "info", event)
        self.sink.write(_JSON.encode(event) + b"\n")


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
