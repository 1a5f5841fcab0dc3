"""Who is calling: the verified token's subject, scopes and claims."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ("ADMIN_SCOPE", "Principal")

ADMIN_SCOPE = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str | None
    scopes: frozenset[str] = frozenset()
    claims: dict[str, Any] = field(default_factory=dict)
    anonymous: bool = False

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        """Scopes from ``scope`` (space separated, OAuth 2) or ``scp`` (a list, Azure AD / Okta)."""
        scopes: set[str] = set()
        scope = claims.get("scope")
        if isinstance(scope, str):
            scopes.update(scope.split())
        scp = claims.get("scp")
        if isinstance(scp, list):
            scopes.update(s for s in scp if isinstance(s, str))
        elif isinstance(scp, str):
            scopes.update(scp.split())
        subject = claims.get("sub")
        return cls(subject=str(subject) if subject is not None else None, scopes=frozenset(scopes), claims=claims)

    def has(self, scope: str | None) -> bool:
        """True when no scope is needed, the token holds it, or the token is an admin's."""
        return scope is None or scope in self.scopes or ADMIN_SCOPE in self.scopes


ANONYMOUS = Principal(subject=None, anonymous=True)
