"""Secrets out of every text the project keeps or shows: log lines, stored errors, alerts, outcomes.

Two nets, because neither alone catches every leak:

- **known values**: every secret the process was configured with (a ``${VAR}`` in the mapping
  under a secret-looking key or from a secret-looking variable, see ``mapping/load.py``) and
  every token it obtains at run time (``register_secret``) is replaced wherever it appears,
  whatever the words around it. A destination that echoes its access token in an error
  message, or a driver that quotes a connection string, is caught by value.
- **shapes**: bearer credentials, JWTs, ``password=``/``pwd=`` pairs, OAuth form fields,
  credentials in URLs and Shopify's prefixed tokens, for secrets this process never saw (a
  caller's token quoted back by a proxy, a peer's key).

Text is what destinations and drivers hand us, so this runs where such text is stored or
sent (the state store's error columns, alert notices, outcome payloads, the log pipeline),
not where it is made: a new error path cannot forget it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from typing import Any

__all__ = (
    "REDACTED",
    "SecretRegistry",
    "is_secret_key",
    "may_hold_secret",
    "redact_text",
    "redact_value",
    "register_secret",
)

REDACTED = "[redacted]"

MIN_SECRET_LENGTH = 8
"""Shorter configured values are not replaced by value: a 4-character "secret" would blank out
ordinary words in every message. The shapes below still apply to them."""

_SECRET_KEY = re.compile(
    # Not "pass" alone: snapshot_pass and bypass name no secret.
    r"password|passwd|passphrase|pwd|secret|token|authorization|api[_-]?key|credential"
    r"|private[_-]?key",
    re.IGNORECASE,
)
_SECRET_WORD = r"(?:password|passwd|pwd|secret|token|api[_-]?key)"
_VALUE = r"""(?:\{(?:[^}]|\}\})*\}?|"[^"]*"?|'[^']*'?|[^;&\s"']+)"""
"""A ``key=value`` pair's value: ODBC's ``{...}`` (``}}`` inside), a quoted one (libpq), or up to ``;``/``&``/space;
an opening brace or quote without its end (a message cut short) takes the rest of the text."""
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Not "a bearer token is required": the words that follow "bearer" in prose are not credentials.
    (
        re.compile(r"(?i)\b(bearer)\s+(?!(?:tokens?|auth\w*|scheme|header|realm)\b)[A-Za-z0-9._~+/=-]+"),
        rf"\1 {REDACTED}",
    ),
    (re.compile(r"(?i)(authorization:\s*basic\s+)[A-Za-z0-9+/=]+"), rf"\1{REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"\bshp(at|ca|pa|ss)_[A-Za-z0-9]+"), "shp\\1_[redacted]"),
    # PWD=, password=, client_secret=, refresh_token=, ?token= in a URL, ...; spaces around = allowed.
    (re.compile(rf"(?i)\b(\w*{_SECRET_WORD})(\s*=\s*){_VALUE}"), rf"\1\2{REDACTED}"),
    # Their JSON forms, any key naming a secret ("clientSecret", "x_access_token"); escaped quotes inside.
    (
        re.compile(rf"(?i)([\"']?[\w-]*{_SECRET_WORD}[\w-]*[\"']?\s*:\s*)\"(?:[^\"\\]|\\.)*\""),
        rf'\1"{REDACTED}"',
    ),
    (re.compile(r"(?i)(://[^:/@\s]+:)([^@\s]+)@"), rf"\1{REDACTED}@"),
)
# A cheap first look: most texts contain none of these, and skip the substitutions entirely.
_HINTS = (
    *("bearer", "authorization", "eyj", "shp", "pwd", "password", "passwd", "secret", "token"),
    *("api_key", "apikey", "api-key", "://"),
)


def _hinted(folded: str) -> bool:
    for hint in _HINTS:  # noqa: SIM110 (a loop, not any() over a generator: a third cheaper on the request line)
        if hint in folded:
            return True
    return False


_FEW = 8
"""Up to this many registered secrets, ``may_hold`` tests each as a substring (a configured
gateway has a handful); past it, one search of the pattern of them all is cheaper."""

ROTATING_KEPT = 64
"""Rotating tokens kept per process: Xero's access and refresh tokens are replaced at each
half-hourly refresh, and a replaced one no longer grants access; 64 covers the last 16 hours."""


class SecretRegistry:
    """Secret values to replace wherever they appear; one per process (``register_secret``)."""

    def __init__(self, rotating_kept: int = ROTATING_KEPT) -> None:
        self._known: set[str] = set()
        self._rotating: dict[str, None] = {}  # insertion-ordered: the oldest is dropped first
        self._rotating_kept = rotating_kept
        self._pattern: re.Pattern[str] | None = None
        self._few: tuple[str, ...] = ()
        """The secrets themselves while there are only a few: a substring test each is cheaper than
        the pattern's search on a short text (the request line). Empty: ask the pattern."""
        self._lock = threading.Lock()

    def register(self, value: str | None, *, rotating: bool = False) -> None:
        """Replace ``value`` from now on; a ``rotating`` one (a token refreshed every half hour) is
        kept among the last ``rotating_kept`` of its kind, so a process that runs for months does
        not grow the pattern (and the cost of every redaction) with every refresh."""
        if not value or len(value) < MIN_SECRET_LENGTH or value in self._known:
            return
        if rotating and value in self._rotating:
            return
        with self._lock:
            if rotating:
                self._rotating[value] = None
                while len(self._rotating) > self._rotating_kept:
                    del self._rotating[next(iter(self._rotating))]
            else:  # configured: kept for the process's life, even if it was first seen as a token
                self._rotating.pop(value, None)
                self._known.add(value)
            # Longest first, so a secret that contains another is replaced whole.
            alternatives = sorted({*self._known, *self._rotating}, key=len, reverse=True)
            # The pattern first: a reader that sees the new ``_few`` never meets an older pattern.
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))
            self._few = tuple(alternatives) if len(alternatives) <= _FEW else ()

    def may_hold(self, text: str) -> bool:
        """Whether ``redact`` could change ``text``: a registered secret or a shape's hint is in it
        (a false alarm only costs the full pass)."""
        few = self._few
        if few:
            for secret in few:  # a loop: no generator on the request line
                if secret in text:
                    return True
        else:
            pattern = self._pattern
            if pattern is not None and pattern.search(text) is not None:
                return True
        folded = text.casefold()
        for hint in _HINTS:  # noqa: SIM110 (``_hinted`` inlined: this runs on every request line)
            if hint in folded:
                return True
        return False

    def redact(self, text: str) -> str:
        """``text`` with every registered secret and every secret-shaped part replaced."""
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        if not _hinted(text.casefold()):
            return text
        for shape, replacement in _SHAPES:
            text = shape.sub(replacement, text)
        return text


_PROCESS = SecretRegistry()


def register_secret(value: str | None, *, rotating: bool = False) -> None:
    """Replace ``value`` wherever it appears in redacted text from now on (process-wide);
    ``rotating``: a token that a refresh replaces (see ``SecretRegistry.register``)."""
    _PROCESS.register(value, rotating=rotating)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a mapping key (a header, a JSON field, a config key) names a secret."""
    return _SECRET_KEY.search(key) is not None


def redact_text(text: str) -> str:
    """``text`` with every known secret and every secret-shaped part replaced."""
    return _PROCESS.redact(text)


may_hold_secret: Callable[[str], bool] = _PROCESS.may_hold
"""Whether ``redact_text`` could change ``text`` (a cheap look, for the request line's hot path;
the process registry's own method, without a call in between)."""


def redact_value(value: Any, secret_key: Callable[[str], bool] = is_secret_key) -> Any:
    """``value`` (JSON-like) with entries under a ``secret_key`` masked and every string ``redact_text``-ed."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: REDACTED if secret_key(str(k)) else redact_value(v, secret_key) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v, secret_key) for v in value)
    return value
