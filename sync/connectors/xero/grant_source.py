"""The OAuth2 token source: the connector's ``XeroTokenSource`` over the sealed grant in the state store.

Each process keeps the access token it last got while it is fresh (Xero does not revoke an
access token when another worker refreshes), and goes to the store, and under the store's lock
to Xero, only when it is about to expire or the API refused it. The refresh itself, the lock and
the ``reconnect`` status are ``sync/state/oauth_grants.py``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import structlog

from sync.connectors.xero.oauth import refresh_tokens
from sync.state.oauth_grants import ReconnectNeeded

if TYPE_CHECKING:
    import httpx

    from sync.connectors.xero.oauth import TokenSet, XeroApp
    from sync.state.oauth_grants import Grant, GrantStore
    from sync.state.store import StateDatabase

__all__ = ("OAuthTokenSource", "report_grant")

log = structlog.get_logger("bridgehead.oauth")


class OAuthTokenSource:
    """Implements ``sync.connectors.xero.tokens.XeroTokenSource``; safe to share between threads."""

    def __init__(self, store: GrantStore, name: str, app: XeroApp, http: httpx.Client) -> None:
        self.store, self.name, self.app, self.http = store, name, app, http
        self._grant: Grant | None = None
        self._refused: str | None = None
        self._lock = threading.Lock()

    def access_token(self) -> str:
        with self._lock:
            grant = self._grant
            if grant is None or self._refused is not None or not grant.fresh(self.store.clock()):
                try:
                    grant = self.store.access(self.name, self._refresh, stale=self._refused)
                except ReconnectNeeded as exc:
                    self._grant_status("reconnect_needed", str(exc))
                    raise
                self._grant, self._refused = grant, None
            return grant.access_token

    def tenant_id(self) -> str | None:
        with self._lock:
            if self._grant is None:
                self._grant = self.store.load(self.name)
            return self._grant.tenant_id if self._grant is not None else None

    def invalidate(self) -> None:
        with self._lock:
            if self._grant is not None:
                self._refused = self._grant.access_token

    def _refresh(self, refresh_token: str) -> TokenSet:
        return refresh_tokens(self.http, refresh_token, client_id=self.app.client_id,
                              client_secret=self.app.client_secret, token_url=self.app.token_url,
                              clock=self.store.clock)  # fmt: skip

    def _grant_status(self, status: str, reason: str) -> None:
        report_grant(self.store.db, self.name, status, reason)

    def __repr__(self) -> str:
        return f"OAuthTokenSource({self.name!r}, <tokens redacted>)"


def report_grant(db: StateDatabase, name: str, status: str, reason: str = "") -> None:
    """Tell the alerts (``sync_grants``) whether the grant works (``ok``) or needs a person (``reconnect_needed``)."""
    try:
        from sync.state.sync_store import SyncStore

        setter = getattr(SyncStore(db), "set_grant", None)
        if setter is not None:
            setter(name, status, reason)
    except Exception as exc:  # the alert row is a convenience; the grant's own status is the record
        log.warning("grant status not reported to the alerts", connection=name, error=type(exc).__name__)
