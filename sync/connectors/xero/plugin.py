"""Xero as a connector plugin (entry point ``xero`` of ``bridgehead.connectors``).

The destination's ``auth`` picks the token source: ``client_credentials`` (a Custom Connection,
and the sandbox), ``env`` (a token in BRIDGEHEAD_XERO_ACCESS_TOKEN) or ``oauth`` (the grant
``bridgehead xero connect`` stored, from ``sync.connectors.xero.oauth.oauth_token_source``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sync.connectors.xero.client import XeroClient
from sync.connectors.xero.config import XeroDestination
from sync.connectors.xero.connector import COLLECTIONS, XeroConnector
from sync.connectors.xero.errors import OUTCOMES
from sync.connectors.xero.tokens import ClientCredentialsTokenSource, EnvTokenSource, XeroTokenSource
from sync.exceptions import Fatal

if TYPE_CHECKING:
    from sync.config import SyncSpec
    from sync.connectors.registry import ConnectorContext

__all__ = ("PLUGIN", "XeroPlugin", "token_source")


def token_source(context: ConnectorContext, destination: str, config: XeroDestination) -> XeroTokenSource:
    if config.auth == "env":
        return EnvTokenSource(context.environ)
    if config.auth == "client_credentials":
        if not config.client_id or not config.client_secret:
            raise Fatal(f"Xero destination {destination!r}: client_credentials needs client_id and client_secret")
        return ClientCredentialsTokenSource(
            context.http, config.identity_url.rstrip("/") + "/connect/token", config.client_id, config.client_secret,
            scopes=config.scopes, tenant=config.tenant_id,
        )  # fmt: skip
    from sync.connectors.xero.oauth import oauth_token_source

    state = getattr(context.store, "db", None)  # the sealed grants live in the SQL state store
    if state is None:
        raise Fatal(f"Xero destination {destination!r}: auth oauth needs a SQL state store (state.url)")
    return oauth_token_source(state, config, name=destination, http=context.http, environ=context.environ)


class XeroPlugin:
    kind = "xero"
    config_type = XeroDestination
    objects = frozenset(COLLECTIONS)
    outcomes = OUTCOMES

    def client(self, context: ConnectorContext, destination: str, config: Any, attempts: int) -> XeroClient:
        tokens = token_source(context, destination, config)
        return XeroClient(context.http, config, tokens, store=context.store, name=destination, attempts=attempts)

    def connector(self, client: Any, spec: SyncSpec) -> XeroConnector:
        return XeroConnector(client, spec.object)


PLUGIN = XeroPlugin()
