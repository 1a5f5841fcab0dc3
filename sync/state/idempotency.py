"""Idempotency keys: the first response to a keyed POST is stored and replayed to every retry.

A key is claimed by inserting its row (the primary key makes exactly one
claimant win, across threads, processes and hosts sharing the store). The
winner writes, then stores its response; a concurrent duplicate sees the claim
pending and waits for that response instead of writing a second time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import msgspec
import sqlalchemy as sa

from sync.state.store import METADATA

if TYPE_CHECKING:
    from sync.state.store import StateDatabase

__all__ = ("Claim", "IdempotencyStore", "StoredResponse")

IDEMPOTENCY = sa.Table(
    "idempotency_keys",
    METADATA,
    sa.Column("owner", sa.String(255), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("headers", sa.Text),
    sa.Column("body", sa.LargeBinary),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of presenting a key: ours to run, a replay, a mismatch, or still running elsewhere."""

    outcome: Literal["claimed", "replay", "mismatch", "pending"]
    response: StoredResponse | None = None


class IdempotencyStore:
    def __init__(self, db: StateDatabase, ttl_s: float) -> None:
        self.db = db
        self.ttl_s = ttl_s

    def claim(self, owner: str, key: str, fingerprint: str) -> Claim:
        """Claim ``key`` for a request with ``fingerprint`` (a hash of method, path and body)."""
        now = time.time()
        with self.db.engine.begin() as conn:
            conn.execute(
                IDEMPOTENCY.delete().where(
                    IDEMPOTENCY.c.owner == owner, IDEMPOTENCY.c.key == key, IDEMPOTENCY.c.expires_at < now
                )
            )
        try:
            with self.db.engine.begin() as conn:
                conn.execute(
                    IDEMPOTENCY.insert().values(
                        owner=owner, key=key, fingerprint=fingerprint, state="pending", expires_at=now + self.ttl_s
                    )
                )
            return Claim("claimed")
        except sa.exc.IntegrityError:
            pass
        return self._existing(owner, key, fingerprint)

    def _existing(self, owner: str, key: str, fingerprint: str) -> Claim:
        with self.db.engine.connect() as conn:
            row = conn.execute(
                sa.select(IDEMPOTENCY).where(IDEMPOTENCY.c.owner == owner, IDEMPOTENCY.c.key == key)
            ).first()
        if row is None:  # released between our insert and this read: the caller may claim again
            return Claim("pending")
        if row.fingerprint != fingerprint:
            return Claim("mismatch")
        if row.state != "done":
            return Claim("pending")
        headers = msgspec.json.decode(row.headers or b"{}", type=dict[str, str])
        return Claim("replay", StoredResponse(row.status, headers, bytes(row.body or b"")))

    def wait(self, owner: str, key: str, fingerprint: str, timeout_s: float = 10.0) -> Claim:
        """Poll a pending key until its response is stored (or it is released, or time runs out)."""
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while True:
            claim = self._existing(owner, key, fingerprint)
            if claim.outcome != "pending" or time.monotonic() > deadline:
                return claim
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def complete(self, owner: str, key: str, response: StoredResponse) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                IDEMPOTENCY.update()
                .where(IDEMPOTENCY.c.owner == owner, IDEMPOTENCY.c.key == key)
                .values(
                    state="done",
                    status=response.status,
                    headers=msgspec.json.encode(response.headers).decode(),
                    body=response.body,
                )
            )

    def release(self, owner: str, key: str) -> None:
        """Forget a claim whose request failed on our side, so the client's retry can run."""
        with self.db.engine.begin() as conn:
            conn.execute(IDEMPOTENCY.delete().where(IDEMPOTENCY.c.owner == owner, IDEMPOTENCY.c.key == key))
