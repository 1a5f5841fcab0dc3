"""Xero's identity service: the consent URL, the code and refresh grants, and ``GET /connections``.

Plain functions over an injected ``httpx.Client`` (STYLE C6); what to do with the tokens (seal,
store, refresh under a lock) is ``sync/state/oauth_grants.py``'s business. Refresh tokens are
single use: the answer to a refresh carries the only refresh token that works from then on
(the one sent stays valid for a 30-minute grace), so a caller must store it before anything else.

Scopes are Xero's granular ones: apps created since 2026-03-02 cannot ask for the broad
``accounting.transactions`` any more, and older apps must move by 2027-09. The consent request
also carries a PKCE S256 challenge: Xero accepts it on every app type, and it makes an
authorization code caught on its way to the localhost callback worthless to anyone else.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from legacy_adapters.redaction import register_secret
from sync.exceptions import Fatal, Retriable

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import httpx

    from sync.connectors.xero.tokens import XeroTokenSource
    from sync.state.store import StateDatabase

__all__ = (
    "AUTHORIZE_URL",
    "CONNECTIONS_URL",
    "DEFAULT_SCOPES",
    "TOKEN_URL",
    "Connection",
    "ConsentRequest",
    "GrantRevoked",
    "TokenSet",
    "XeroApp",
    "connections",
    "consent_request",
    "exchange_code",
    "oauth_token_source",
    "refresh_tokens",
)

AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
TOKEN_URL = "https://identity.xero.com/connect/token"
CONNECTIONS_URL = "https://api.xero.com/connections"
_IDENTITY, _LOGIN, _API = "https://identity.xero.com", "https://login.xero.com", "https://api.xero.com"
_REDIRECT = "http://localhost:8765/callback"

DEFAULT_SCOPES = (
    "offline_access",  # a refresh token: the sync runs without a person at the keyboard
    "accounting.contacts",  # customers -> Contacts
    "accounting.settings",  # items -> Items (and the organisation's settings they need)
    "accounting.invoices",  # completed jobs -> ACCREC Invoices, and reading them back for webhooks
    "accounting.payments.read",  # what a payment webhook names
)
"""Granular scopes (no ``accounting.transactions``): what the connector and the write-back use."""


class GrantRevoked(Fatal):
    """``invalid_grant``: the refresh token expired (60 days unused) or the user disconnected the app."""


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_at: float
    """Epoch seconds when the access token stops working."""
    scope: str = ""

    def __repr__(self) -> str:  # a token set in a traceback or a log line shows no token
        return f"TokenSet(expires_at={self.expires_at:.0f}, scope={self.scope!r})"


@dataclass(frozen=True, slots=True)
class XeroApp:
    """The app's credentials and where Xero's identity service is (the fake's URL in the sandbox)."""

    client_id: str
    client_secret: str
    identity_url: str = _IDENTITY
    """``{identity_url}/connect/token``."""
    login_url: str = _LOGIN
    """``{login_url}/identity/connect/authorize``: the consent screen."""
    api_url: str = _API
    """``{api_url}/connections`` and the Accounting API."""
    redirect_uri: str = _REDIRECT
    """Registered with the app in Xero's developer portal; ``xero connect`` listens on it."""
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    timeout_s: float = 10.0

    def __repr__(self) -> str:
        return f"XeroApp(client_id={self.client_id!r}, identity_url={self.identity_url!r})"

    @property
    def token_url(self) -> str:
        return f"{self.identity_url.rstrip('/')}/connect/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.login_url.rstrip('/')}/identity/connect/authorize"

    @property
    def connections_url(self) -> str:
        return f"{self.api_url.rstrip('/')}/connections"

    @classmethod
    def from_destination(cls, destination: Any) -> XeroApp:
        """From a destination block (a Struct or a dict): ``client_id``, ``client_secret``, ``url``, …"""

        def get(key: str, default: Any = None) -> Any:
            if isinstance(destination, dict):
                return destination.get(key, default)
            return getattr(destination, key, default)

        client_id, client_secret = get("client_id"), get("client_secret")
        if not client_id or not client_secret:
            raise Fatal("a Xero destination with OAuth needs client_id and client_secret")
        # A destination at one URL (the sandbox's fake) serves identity, login and API there.
        api = get("url") or _API
        scopes = get("scopes")
        return cls(
            client_id=str(client_id),
            client_secret=str(client_secret),
            identity_url=get("identity_url") or (api if get("url") else _IDENTITY),
            login_url=get("login_url") or (api if get("url") else _LOGIN),
            api_url=api,
            redirect_uri=get("redirect_uri") or _REDIRECT,
            scopes=tuple(scopes.split() if isinstance(scopes, str) else scopes) if scopes else DEFAULT_SCOPES,
            timeout_s=float(get("timeout_s") or 10.0),
        )


@dataclass(frozen=True, slots=True)
class Connection:
    tenant_id: str
    tenant_name: str
    tenant_type: str


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    url: str
    state: str
    """Echoed back to the callback: a callback with any other state was not started by us."""
    code_verifier: str
    redirect_uri: str


def consent_request(
    client_id: str, redirect_uri: str, *, scopes: tuple[str, ...] = DEFAULT_SCOPES, authorize_url: str = AUTHORIZE_URL
) -> ConsentRequest:
    """A consent URL with a fresh ``state`` and PKCE verifier (both kept by the caller for the callback)."""
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)  # 64 characters, inside RFC 7636's 43..128
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return ConsentRequest(f"{authorize_url}?{query}", state, verifier, redirect_uri)


def exchange_code(
    http: httpx.Client, request: ConsentRequest, code: str, *, client_id: str, client_secret: str,
    token_url: str = TOKEN_URL, clock: Callable[[], float] = time.time,
) -> TokenSet:  # fmt: skip
    """Trade the callback's authorization code for the first token pair."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": request.redirect_uri,
            "code_verifier": request.code_verifier}  # fmt: skip
    return _token_call(http, form, client_id, client_secret, token_url, clock)


def refresh_tokens(
    http: httpx.Client, refresh_token: str, *, client_id: str, client_secret: str, token_url: str = TOKEN_URL,
    clock: Callable[[], float] = time.time,
) -> TokenSet:  # fmt: skip
    """One refresh. Raises ``GrantRevoked`` on ``invalid_grant``, ``Retriable`` when Xero is unreachable."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return _token_call(http, form, client_id, client_secret, token_url, clock)


def connections(http: httpx.Client, access_token: str, *, url: str = CONNECTIONS_URL) -> list[Connection]:
    """The organisations this grant reaches; each call to the Accounting API names one as ``xero-tenant-id``."""
    import httpx

    try:
        response = http.get(url, headers={"Authorization": f"Bearer {access_token}"})
    except httpx.TransportError as exc:
        raise Retriable(f"Xero /connections unreachable: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise Fatal(f"Xero /connections answered {response.status_code}")
    rows = response.json()
    return [
        Connection(str(r["tenantId"]), str(r.get("tenantName") or ""), str(r.get("tenantType") or ""))
        for r in rows
        if isinstance(r, dict) and r.get("tenantId")
    ]


def _token_call(
    http: httpx.Client, form: dict[str, str], client_id: str, client_secret: str, url: str, clock: Callable[[], float]
) -> TokenSet:
    import httpx

    started = clock()
    try:
        response = http.post(url, data=form, auth=(client_id, client_secret))
    except httpx.TransportError as exc:
        # The refresh may have happened at Xero: the token we sent stays valid for the grace period.
        raise Retriable(f"Xero token endpoint unreachable: {type(exc).__name__}") from None
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    if response.status_code == 400 and error == "invalid_grant":
        raise GrantRevoked("Xero refused the grant (invalid_grant): reconnect with `bridgehead xero connect`")
    if response.status_code in (401, 400) and error in ("invalid_client", "unauthorized_client"):
        raise Fatal(f"Xero refused the app's credentials ({error}): check client_id and client_secret")
    if response.status_code >= 500 or response.status_code == 429:
        raise Retriable(f"Xero token endpoint answered {response.status_code}")
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        raise Fatal(f"Xero token endpoint answered {response.status_code} ({error or 'no tokens'})")
    access, refresh = str(body["access_token"]), str(body.get("refresh_token") or "")
    register_secret(access, rotating=True)  # replaced by value wherever a destination's words quote them
    register_secret(refresh, rotating=True)
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        expires_at=started + float(body.get("expires_in", 1800)),
        scope=str(body.get("scope", "")),
    )


def oauth_token_source(state: StateDatabase, destination: Any, *, name: str | None = None,
                       http: httpx.Client | None = None, environ: Mapping[str, str] | None = None,
                       ) -> XeroTokenSource:  # fmt: skip
    """The connector's token source for a destination with ``auth: oauth`` (the seam in ``tokens.py``).

    Reads from the destination block: ``client_id``, ``client_secret``, and where Xero is
    (``identity_url`` for the token endpoint, ``url`` for ``/connections``; both Xero's own by default).
    The sealing keys come from ``BRIDGEHEAD_TOKEN_KEYS`` in ``environ`` (the process environment by default).
    """
    import os

    import httpx

    from sync.connectors.xero.grant_source import OAuthTokenSource
    from sync.state.oauth_grants import GrantStore
    from sync.state.sealing import Sealer

    settings = XeroApp.from_destination(destination)
    store = GrantStore(state, Sealer.from_environ(os.environ if environ is None else environ))
    connection = name or getattr(destination, "name", None) or "xero"
    return OAuthTokenSource(store, connection, settings, http or httpx.Client(timeout=settings.timeout_s))
