"""A Xero destination in the mapping (``kind: xero``)."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ("XeroDestination",)


class XeroDestination(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    kind: Literal["xero"] = "xero"
    url: str = "https://api.xero.com"
    """Base of ``/connections`` and the Accounting API (``/api.xro/2.0``)."""
    identity_url: str = "https://identity.xero.com"
    """Base of the token endpoint (``/connect/token``)."""
    auth: Literal["client_credentials", "env", "oauth"] = "oauth"
    """Where tokens come from: a Custom Connection's client credentials; BRIDGEHEAD_XERO_ACCESS_TOKEN;
    or the OAuth2 grant stored by ``bridgehead xero connect``."""
    client_id: str | None = None
    client_secret: str | None = None
    scopes: list[str] = msgspec.field(default_factory=list)
    """Scopes requested (granular scopes for apps created since March 2026)."""
    login_url: str | None = None
    """Base of the consent screen (``/identity/connect/authorize``); Xero's own by default."""
    redirect_uri: str | None = None
    """OAuth2 callback (``bridgehead xero connect``)."""
    tenant_id: str | None = None
    """The organisation to write to; by default the one ``/connections`` names."""
    timeout_s: float = 20.0
    concurrency: int = 5
    """Calls in flight per tenant (Xero allows 5)."""
    reserve_per_minute: int = 1
    """Calls of the minute window left unused, for other clients of the same tenant."""

    def __repr__(self) -> str:  # a config in a traceback or a log line shows no client secret
        return f"XeroDestination(url={self.url!r}, auth={self.auth!r}, client_id={self.client_id!r}, <secret redacted>)"
