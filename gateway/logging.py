"""Structured logging: one structlog pipeline, the request id on every line, secrets redacted.

``redact_secrets`` runs on every event, so a token, password or connection
string that reaches a log call by accident is masked before it is written.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import IO, Any, Literal

import msgspec
import structlog

__all__ = ("LOG_COPY_ENV", "LogFormat", "LogSink", "configure_logging", "redact_secrets")

_SECRET_KEYS = re.compile(r"(pass(word)?|pwd|secret|token|authorization|api[_-]?key|credential)", re.I)
_PATTERNS = (
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"(?i)\b(pwd|password)=([^;&\s]+)"), r"\1=[redacted]"),
    (re.compile(r"(?i)(://[^:/@\s]+:)([^@\s]+)@"), r"\1[redacted]@"),
)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {k: "[redacted]" if _SECRET_KEYS.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def redact_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask values under secret-looking keys and secret-looking substrings anywhere."""
    for key, value in list(event.items()):
        event[key] = "[redacted]" if _SECRET_KEYS.search(key) and key != "event" else _scrub(value)
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
    if _sink is not None:
        _sink.close()
    copy_path = os.environ.get(LOG_COPY_ENV)
    _sink = LogSink(out, copy=open(copy_path, "ab") if copy_path else None)  # noqa: SIM115 (lives with the sink)
    sink = _sink
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Tracebacks become plain text first (no local variables, which could hold a token),
            # so the redaction below sees them too.
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        # Disabled levels are no-op methods: a debug call costs nothing when the level is info.
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=lambda *_args: _SinkLogger(sink),
        cache_logger_on_first_use=False,
    )
