"""A JWKS fetched over httpx, cached, and refetched when an unknown ``kid`` appears.

Refetching on an unknown kid is how key rotation reaches us without a restart;
the refetch is rate-limited so a flood of tokens with made-up kids cannot make
the gateway hammer the identity provider.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import jwt
import structlog

__all__ = ("JwksCache", "JwksUnavailable")

log = structlog.get_logger("bridgehead.auth")


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
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, kid: str) -> jwt.PyJWK | None:
        """The key with ``kid``, fetching the set when stale or when the kid is new (at most so often)."""
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at > self._ttl
            may_refetch = self._fetched_at is None or now - self._fetched_at >= self._min_refetch
            if stale or (kid not in self._keys and may_refetch):
                self._fetch(now)
            return self._keys.get(kid)

    def holds(self, kid: str) -> bool:
        """Whether the key set as last fetched still has ``kid`` (no fetch, for cached verdicts)."""
        with self._lock:
            if self._fetched_at is not None and self._clock() - self._fetched_at > self._ttl:
                self._fetch(self._clock())  # stale: the issuer may have withdrawn keys since
            return kid in self._keys

    def _fetch(self, now: float) -> None:
        try:
            response = self._client.get(self.url, timeout=5.0)
            response.raise_for_status()
            document = response.json()
            entries = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(entries, list):
                # A misconfigured URL (an HTML page, a bare list) is a failed fetch, not a crash per request.
                raise ValueError("not a JWK Set")
            keys = {}
            for data in entries:
                if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
                    continue
                try:
                    keys[data["kid"]] = jwt.PyJWK(data)
                except jwt.PyJWTError:
                    log.warning("jwks key skipped", kid=data.get("kid"))
            self._keys = keys
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("jwks fetch failed", url=self.url, error=type(exc).__name__)
            if self._fetched_at is None and not self._keys:
                self._fetched_at = now
                raise JwksUnavailable("the signing keys could not be fetched") from None
        finally:
            self.fetches += 1
            self._fetched_at = now
