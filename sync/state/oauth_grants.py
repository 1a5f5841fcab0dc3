"""OAuth grants in the state store: sealed tokens, one refresh at a time across every worker.

One row per connection (``provider``, ``name`` = the destination's name in the mapping). The
tokens are sealed (``sync/state/sealing.py``); nothing else in the row is secret.

Why the refresh is shaped the way it is: Xero's refresh tokens are single use. Two workers that
both see an expired access token and both refresh with the same refresh token get two new pairs
(the second inside Xero's 30-minute grace), and whichever pair is stored last is the one that
survives; worse, a worker that refreshes with a token another worker already replaced *after*
the grace gets ``invalid_grant`` and a sync that stops until a person consents again. So:

1. The refresh happens inside a state-store transaction that holds a lock on the grant's row
   (PostgreSQL ``SELECT … FOR UPDATE``; SQLite a write on the row, which takes the database's
   write lock until commit). Every worker, in any process, queues there.
2. Under the lock the row is read again. When its ``generation`` moved since the caller read it,
   another worker refreshed already: the caller takes the stored new pair, never calling Xero.
3. Otherwise the refresh call is made, and the new pair is written and committed *before* the
   new access token is handed to anyone. Should the commit fail, the refresh token that was sent
   is still inside Xero's grace, so the next attempt succeeds with it.
4. ``invalid_grant`` marks the row ``reconnect`` (committed), logs an error event, and every later
   call fails at once without contacting Xero: a revoked grant costs one call, not a retry storm.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog

from legacy_adapters.redaction import register_secret
from sync.exceptions import Fatal
from sync.state.redacted import RedactedText
from sync.state.store import METADATA
from sync.state.utc import UtcDateTime, utcnow

if TYPE_CHECKING:
    from sync.connectors.xero.oauth import TokenSet
    from sync.state.sealing import Sealer
    from sync.state.store import StateDatabase

__all__ = ("OAUTH_GRANTS", "Grant", "GrantStore", "NotConnected", "ReconnectNeeded")

log = structlog.get_logger("bridgehead.oauth")

OAUTH_GRANTS = sa.Table(
    "bh_oauth_grants",
    METADATA,
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("tenant_id", sa.String(64)),
    sa.Column("tenant_name", sa.String(255)),
    # Both tokens sealed (Fernet): a copy of the store alone opens nothing.
    sa.Column("access_token", sa.Text, nullable=False),
    sa.Column("refresh_token", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("scope", sa.Text, nullable=False, default=""),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", RedactedText()),
    sa.Column("generation", sa.Integer, nullable=False, default=1),
    sa.Column("refreshes", sa.Integer, nullable=False, default=0),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

EARLY_S = 120.0
"""Refresh this long before the access token expires, so no call goes out with a dying token."""


class NotConnected(Fatal):
    """No grant is stored for this connection: ``bridgehead xero connect`` first."""


class ReconnectNeeded(Fatal):
    """The stored grant was refused (revoked or expired): a person must consent again."""


@dataclass(frozen=True, slots=True)
class Grant:
    name: str
    tenant_id: str | None
    tenant_name: str | None
    access_token: str
    refresh_token: str
    expires_at: float
    scope: str
    status: str
    reason: str | None
    generation: int

    def __repr__(self) -> str:
        return f"Grant({self.name!r}, tenant={self.tenant_id!r}, status={self.status!r}, gen={self.generation})"

    def fresh(self, now: float) -> bool:
        return self.expires_at - EARLY_S > now


class GrantStore:
    """Sealed OAuth grants of one provider."""

    def __init__(
        self, db: StateDatabase, sealer: Sealer, *, provider: str = "xero", clock: Callable[[], float] = time.time
    ) -> None:
        self.db, self.sealer, self.provider, self.clock = db, sealer, provider, clock

    # -- reading ----------------------------------------------------------------------------------

    def load(self, name: str) -> Grant | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(self._select(name)).mappings().first()
        return self._grant(row) if row is not None else None

    def statuses(self) -> list[dict[str, Any]]:
        """Every connection without its tokens: for ``sync status`` and ``xero status``."""
        t = OAUTH_GRANTS
        columns = (t.c.name, t.c.tenant_id, t.c.tenant_name, t.c.status, t.c.reason, t.c.expires_at, t.c.refreshes,
                   t.c.updated_at)  # fmt: skip
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(*columns).where(t.c.provider == self.provider).order_by(t.c.name))
            return [dict(r) for r in rows.mappings()]

    # -- writing ----------------------------------------------------------------------------------

    def save(self, name: str, tokens: TokenSet, *, tenant_id: str | None, tenant_name: str | None) -> None:
        """Store the pair a consent produced, replacing any earlier grant (a reconnect clears its status)."""
        t = OAUTH_GRANTS
        values = {
            "tenant_id": tenant_id, "tenant_name": tenant_name, "scope": tokens.scope, "status": "connected",
            "reason": None, **self._sealed(tokens),
        }  # fmt: skip
        with self.db.engine.begin() as conn:
            locked = self._lock(conn, name)
            if locked is None:
                conn.execute(t.insert().values(provider=self.provider, name=name, generation=1, refreshes=0, **values))
            else:
                conn.execute(
                    t.update()
                    .where(t.c.provider == self.provider, t.c.name == name)
                    .values(generation=t.c.generation + 1, **values)
                )
        log.info("oauth grant stored", provider=self.provider, connection=name, tenant=tenant_id)

    def access(self, name: str, refresh: Callable[[str], TokenSet], *, stale: str | None = None) -> Grant:
        """A grant whose access token is good for at least ``EARLY_S`` more seconds.

        Args:
            name: the connection.
            refresh: calls the token endpoint with a refresh token; raises ``GrantRevoked`` on invalid_grant.
            stale: an access token the API just refused (401): refresh even if the clock says it is fresh,
                unless the stored one is already another.
        """
        seen = self.load(name)
        if seen is None:
            raise NotConnected(f"{self.provider} connection {name!r} is not connected: run `bridgehead xero connect`")
        self._usable(seen)
        if seen.fresh(self.clock()) and stale != seen.access_token:
            return seen
        return self._refresh(name, seen.generation, refresh)

    def rekey(self) -> int:
        """Seal every stored token again with the newest key; returns the rows rewritten."""
        t = OAUTH_GRANTS
        done = 0
        with self.db.engine.begin() as conn:
            rows = conn.execute(sa.select(t).where(t.c.provider == self.provider)).mappings().all()
            for row in rows:
                if self.sealer.is_current(row["access_token"]) and self.sealer.is_current(row["refresh_token"]):
                    continue
                conn.execute(
                    t.update()
                    .where(t.c.provider == self.provider, t.c.name == row["name"])
                    .values(access_token=self.sealer.seal(self.sealer.open(row["access_token"])),
                            refresh_token=self.sealer.seal(self.sealer.open(row["refresh_token"])))
                )  # fmt: skip
                done += 1
        return done

    # -- the refresh ------------------------------------------------------------------------------

    def _refresh(self, name: str, seen_generation: int, refresh: Callable[[str], TokenSet]) -> Grant:
        from sync.connectors.xero.oauth import GrantRevoked

        t = OAUTH_GRANTS
        where = (t.c.provider == self.provider, t.c.name == name)
        revoked: str | None = None
        with self.db.engine.begin() as conn:
            row = self._lock(conn, name)
            if row is None:
                raise NotConnected(f"{self.provider} connection {name!r} was removed")
            current = self._grant(row)
            self._usable(current)
            if current.generation != seen_generation and current.fresh(self.clock()):
                log.debug("oauth refresh done by another worker", provider=self.provider, connection=name)
                return current  # another worker refreshed while this one waited for the lock
            try:
                tokens = refresh(current.refresh_token)
            except GrantRevoked as exc:
                revoked = str(exc)
                conn.execute(t.update().where(*where).values(status="reconnect", reason=revoked, updated_at=utcnow()))
            else:
                if not tokens.refresh_token:  # Xero always rotates; keep the old one rather than none
                    tokens = type(tokens)(tokens.access_token, current.refresh_token, tokens.expires_at, tokens.scope)
                conn.execute(
                    t.update()
                    .where(*where)
                    .values(generation=t.c.generation + 1, refreshes=t.c.refreshes + 1, scope=tokens.scope or
                            current.scope, **self._sealed(tokens))
                )  # fmt: skip
        # Committed: from here on the new pair is what every worker reads.
        if revoked is not None:
            # The alert: an operator must consent again; nothing retries this.
            log.error("oauth grant refused: reconnect needed", provider=self.provider, connection=name,
                      alert=True)  # fmt: skip
            raise ReconnectNeeded(f"{self.provider} connection {name!r} needs reconnecting: {revoked}")
        log.info("oauth tokens refreshed", provider=self.provider, connection=name)
        fresh = self.load(name)
        assert fresh is not None
        return fresh

    def _lock(self, conn: sa.Connection, name: str) -> sa.RowMapping | None:
        """Take the grant's lock for the rest of ``conn``'s transaction and read the row under it."""
        t = OAUTH_GRANTS
        if conn.dialect.name == "sqlite":
            # A write (touching nothing) takes SQLite's database write lock, held until commit; the read
            # after it sees every commit made before the lock was granted.
            conn.execute(
                t.update().where(t.c.provider == self.provider, t.c.name == name).values(generation=t.c.generation)
            )
            return conn.execute(self._select(name)).mappings().first()
        return conn.execute(self._select(name).with_for_update()).mappings().first()

    # -- helpers ----------------------------------------------------------------------------------

    def _select(self, name: str) -> sa.Select[Any]:
        t = OAUTH_GRANTS
        return sa.select(t).where(t.c.provider == self.provider, t.c.name == name)

    def _sealed(self, tokens: TokenSet) -> dict[str, Any]:
        return {
            "access_token": self.sealer.seal(tokens.access_token),
            "refresh_token": self.sealer.seal(tokens.refresh_token),
            "expires_at": tokens.expires_at,
            "updated_at": utcnow(),
        }

    def _grant(self, row: sa.RowMapping) -> Grant:
        access, refresh = self.sealer.open(row["access_token"]), self.sealer.open(row["refresh_token"])
        register_secret(access, rotating=True)  # replaced by value wherever a destination's words quote them
        register_secret(refresh, rotating=True)
        return Grant(
            name=row["name"],
            tenant_id=row["tenant_id"],
            tenant_name=row["tenant_name"],
            access_token=access,
            refresh_token=refresh,
            expires_at=float(row["expires_at"]),
            scope=row["scope"] or "",
            status=row["status"],
            reason=row["reason"],
            generation=int(row["generation"]),
        )

    def _usable(self, grant: Grant) -> None:
        if grant.status == "reconnect":
            raise ReconnectNeeded(f"{self.provider} connection {grant.name!r} needs reconnecting: {grant.reason}")
