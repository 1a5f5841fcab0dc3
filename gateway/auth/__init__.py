"""Bearer tokens, scopes, row filters and field hiding."""

from __future__ import annotations

from gateway.auth.guards import Access, authorize_read
from gateway.auth.principal import ADMIN_SCOPE, Principal
from gateway.auth.tokens import TokenVerifier

__all__ = ("ADMIN_SCOPE", "Access", "Principal", "TokenVerifier", "authorize_read")
