"""Structured logging: one structlog pipeline, the request id on every line, secrets redacted.

``redact_secrets`` runs on every event, so a token, password or connection
string that reaches a log call by accident is masked before it is written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ("configure_logging", "redact_secrets")

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


def configure_logging(level: str = "info", *, json: bool = False) -> None:
    """Set up structlog for the process: key=value lines for people, JSON lines for collectors."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
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
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
