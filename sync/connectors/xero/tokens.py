"""Where the Xero connector gets its bearer token and tenant: the seam between the connector and OAuth.

The connector never refreshes, stores or logs tokens itself. It asks a ``XeroTokenSource`` for the
current access token before every request, calls ``invalidate()`` after a 401 (the token was expired
or revoked early) and asks once more; a source that cannot produce a working token raises ``Fatal``
(e.g. "reconnect with `bridgehead xero connect`"), which stops the run instead of retrying.

``tenant_id()`` may return None: the connector then reads ``GET /connections`` and uses the one
ORGANISATION it names (or fails, naming the choices, when there are several).

Two sources live here, for the sandbox, the tests and a token pasted by hand:

- ``StaticTokenSource``: a fixed access token (a 30-minute token from Xero's API explorer, or one the
  fake issued); ``invalidate()`` makes the next ``access_token()`` raise ``Fatal``: no refresh exists.
- ``EnvTokenSource``: the same, read from ``BRIDGEHEAD_XERO_ACCESS_TOKEN`` (and optionally
  ``BRIDGEHEAD_XERO_TENANT_ID``) at each call, so an operator can rotate it without a restart.
- ``ClientCredentialsTokenSource``: a Custom Connection's ``client_credentials`` grant (and the sandbox).

The OAuth2 source (consent, encrypted store, shared refresh lock) implements the same Protocol.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import httpx

from legacy_adapters.redaction import register_secret
from sync.exceptions import Fatal, Retriable

__all__ = (
    "ACCESS_TOKEN_ENV",
    "TENANT_ID_ENV",
    "ClientCredentialsTokenSource",
    "EnvTokenSource",
    "StaticTokenSource",
    "XeroTokenSource",
)

ACCESS_TOKEN_ENV = "BRIDGEHEAD_XERO_ACCESS_TOKEN"
TENANT_ID_ENV = "BRIDGEHEAD_XERO_TENANT_ID"


@runtime_checkable
class XeroTokenSource(Protocol):
    def access_token(self) -> str:
        """A bearer token valid for at least the next request (refreshing first if needed).

        Raises ``Fatal`` when none can be had (no grant, revoked grant): the sync must stop and
        say "reconnect", never retry."""
        ...

    def tenant_id(self) -> str | None:
        """The Xero tenant to address, or None to let the connector pick it from ``/connections``."""
        ...

    def invalidate(self) -> None:
        """The last token was refused (401): drop it, so the next ``access_token()`` gets a new one."""
        ...


class StaticTokenSource:
    """One fixed token: no refresh, so a refused token ends the run with a plain message."""

    def __init__(self, token: str, tenant: str | None = None) -> None:
        if not token:
            raise Fatal("Xero: an empty access token was given")
        register_secret(token)
        self._token = token
        self._tenant = tenant
        self._refused = False
        self._lock = threading.Lock()

    def access_token(self) -> str:
        with self._lock:
            if self._refused:
                raise Fatal("Xero refused the access token and it cannot be refreshed: reconnect")
            return self._token

    def tenant_id(self) -> str | None:
        return self._tenant

    def invalidate(self) -> None:
        with self._lock:
            self._refused = True

    def __repr__(self) -> str:  # never print the token
        return f"StaticTokenSource(<redacted>, tenant={self._tenant!r})"


class EnvTokenSource:
    """The token from the environment, read at each call (a rotated variable is picked up)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._refused: str | None = None  # the token value that was refused

    def access_token(self) -> str:
        token = self._environ.get(ACCESS_TOKEN_ENV, "")
        if not token:
            raise Fatal(f"Xero: {ACCESS_TOKEN_ENV} is not set: run `bridgehead xero connect` or set it")
        if token == self._refused:
            raise Fatal(f"Xero refused the token in {ACCESS_TOKEN_ENV}: reconnect or set a new one")
        register_secret(token, rotating=True)
        return token

    def tenant_id(self) -> str | None:
        return self._environ.get(TENANT_ID_ENV) or None

    def invalidate(self) -> None:
        self._refused = self._environ.get(ACCESS_TOKEN_ENV, "") or None

    def __repr__(self) -> str:
        return f"EnvTokenSource({ACCESS_TOKEN_ENV}=<redacted>)"


class ClientCredentialsTokenSource:
    """A Xero Custom Connection: ``client_credentials`` grant, one organisation, no refresh token.

    The token (30 minutes) is fetched on first use and again a minute before it expires, or after
    ``invalidate()``; a refused client is ``Fatal``. Also what ``bridgehead sandbox`` serves.
    """

    def __init__(
        self,
        http: httpx.Client,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scopes: Sequence[str] = (),
        tenant: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http, self._url, self._tenant, self._clock = http, token_url, tenant, clock
        self._auth = httpx.BasicAuth(client_id, client_secret)
        register_secret(client_secret)
        self._scopes = " ".join(scopes)
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def access_token(self) -> str:
        with self._lock:
            if self._token is None or self._token[1] - 60 <= self._clock():
                self._token = self._fetch()
            return self._token[0]

    def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self._scopes:
            form["scope"] = self._scopes
        try:
            answer = self._http.post(self._url, data=form, auth=self._auth, timeout=20)
        except httpx.HTTPError as exc:
            raise Retriable(f"Xero token endpoint: {type(exc).__name__}") from None
        if answer.status_code >= 500:
            raise Retriable(f"Xero token endpoint: HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code != 200 or not body.get("access_token"):
            error = body.get("error", f"HTTP {answer.status_code}") if isinstance(body, dict) else answer.status_code
            raise Fatal(f"Xero refused the client credentials ({error}): check client_id and client_secret")
        token = str(body["access_token"])
        register_secret(token, rotating=True)
        return token, self._clock() + float(body.get("expires_in", 1800))

    def tenant_id(self) -> str | None:
        return self._tenant

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def __repr__(self) -> str:
        return f"ClientCredentialsTokenSource({self._url}, <redacted>)"
