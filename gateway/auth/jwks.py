"""A JWKS fetched over httpx, cached, and refetched when an unknown ``kid`` appears.

Refetching on an unknown kid is how key rotation reaches us without a restart;
the refetch is rate-limited so a flood of tokens with made-up kids cannot make
the gateway hammer the identity provider. No lock is held across the HTTP call,
and verification runs off the database worker pool (see ``auth/middleware.py``),
so a slow identity provider stalls only the tokens that need its answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import structlog

__all__ = ("JwksCache", "JwksUnavailable")

log = structlog.get_logger("bridgehead.auth")

_FETCH_TIMEOUT_S = 5.0


class JwksUnavailable(Exception):
    """The key set could not be fetched and none is cached."""


class JwksCache:
    def __init__(
        self,
        url: str,
        client: httpx.Client,
        *,
        ttl_s: float = 300.0,
        min_refetch_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._client = client
        self._ttl = ttl_s
        self._min_refetch = min_refetch_s
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._entries: dict[str, dict[str, Any]] = {}  # each key's JWK as served, to tell a changed one
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self._fetching: threading.Event | None = None
        self._unavailable = False
        # A caller waiting for another's fetch gives up after the fetch's own timeout.
        self._wait_s = _FETCH_TIMEOUT_S + 1.0
        self.fetches = 0

    def get(self, kid: str) -> jwt.PyJWK | None:
        """The key with ``kid``, fetching the set when stale or when the kid is new (at most so often).

        The lock guards the cached set only, never the HTTP call: one caller fetches while
        the others go on with a key they already know, or wait for that one fetch.
        """
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at > self._ttl
            may_refetch = self._fetched_at is None or now - self._fetched_at >= self._min_refetch
            if not (stale or (kid not in self._keys and may_refetch)):
                return self._keys.get(kid)
            running = self._fetching
            if running is None:
                running = self._fetching = threading.Event()
                fetch = True
            else:
                fetch = False
                if kid in self._keys:  # a fetch is under way; a key we hold is still good meanwhile
                    return self._keys[kid]
        if fetch:
            try:
                self._fetch(now)
            finally:
                with self._lock:
                    self._fetching = None
                running.set()
        else:
            running.wait(self._wait_s)
        with self._lock:
            if self._unavailable and not self._keys:
                raise JwksUnavailable("the signing keys could not be fetched")
            return self._keys.get(kid)

    def holds(self, key: jwt.PyJWK) -> bool | None:
        """Whether the set as last fetched still has ``key`` under its kid; ``None`` when the set is
        stale (never fetches).

        A key the issuer withdrew, or replaced under the same kid (another ``PyJWK``: a refetch keeps
        the object of a key whose JWK did not change), fails the ``is`` test. Cached verdicts ask this
        on the event loop, so it must not block on the network.
        """
        with self._lock:
            if self._fetched_at is None or self._clock() - self._fetched_at > self._ttl:
                return None
            kid = key.key_id  # a held key has one: the set is indexed by it
            return kid is not None and self._keys.get(kid) is key

    def _fetch(self, now: float) -> None:
        # Runs without the lock: the network call must not stall callers with keys in hand.
        try:
            response = self._client.get(self.url, timeout=_FETCH_TIMEOUT_S)
            response.raise_for_status()
            document = response.json()
            entries = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(entries, list):
                # A misconfigured URL (an HTML page, a bare list) is a failed fetch, not a crash per request.
                raise ValueError("not a JWK Set")
            keys, served = {}, {}
            with self._lock:
                known, known_entries = self._keys, self._entries
            for data in entries:
                if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
                    continue
                kid = data["kid"]
                if known_entries.get(kid) == data and kid in known:  # unchanged: the same key object
                    keys[kid], served[kid] = known[kid], data
                    continue
                try:
                    keys[kid], served[kid] = jwt.PyJWK(data), data
                except jwt.PyJWTError:
                    log.warning("jwks key skipped", kid=kid)
            with self._lock:
                self._keys, self._entries = keys, served
                self._unavailable = False
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("jwks fetch failed", url=self.url, error=type(exc).__name__)
            with self._lock:
                self._unavailable = True
        finally:
            with self._lock:
                self.fetches += 1
                self._fetched_at = now
