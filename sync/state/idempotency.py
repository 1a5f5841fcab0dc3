"""Idempotency keys: the first response to a keyed POST is stored and replayed to every retry.

A key moves ``pending`` -> ``committing`` -> ``done``. It is claimed by inserting
its row (the primary key makes exactly one claimant win, across threads,
processes and hosts sharing the store) with a short lease and a random token.
Just before the legacy transaction commits, the holder moves the row to
``committing`` (``seal``) — only if its token still holds the lease, so a holder
that was presumed dead cannot commit behind its successor's back. After the
commit it stores the response (``complete``).

What a retry gets follows from the state, never from a guess:

- ``pending`` within its lease: wait (the first request is still running);
- ``pending`` past its lease: the holder died before committing; the key is
  claimed afresh (nothing was written);
- ``committing`` past its lease: the holder died between its commit and
  storing the answer; the write may have happened, so it is never run again
  and the caller is told the outcome is unknown;
- ``done``: the stored response is replayed.

``release`` deletes only a ``pending`` row: after the seal, no code path can
free the key for a second write. A response the store refused to take (it was
down right after the commit) is kept in this process and offered again on the
next claim, so retries here still get it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import msgspec
import sqlalchemy as sa
import structlog

from sync.state.store import METADATA

if TYPE_CHECKING:
    from sync.state.store import StateDatabase

__all__ = ("IDEMPOTENCY", "Claim", "IdempotencyStore", "LeaseLost", "StoredResponse")

log = structlog.get_logger("bridgehead.idempotency")

IDEMPOTENCY = sa.Table(
    "idempotency_keys",
    METADATA,
    sa.Column("owner", sa.String(255), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("headers", sa.Text),
    sa.Column("body", sa.LargeBinary),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    # The holder's random token and how long its claim lasts without news from it.
    sa.Column("token", sa.String(32)),
    sa.Column("lease_until", sa.Float),
)

_KEPT_IN_MEMORY = 10_000
_STORE_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of presenting a key: ours to run, a replay, a mismatch, still running, or unknown."""

    outcome: Literal["claimed", "replay", "mismatch", "pending", "unknown"]
    response: StoredResponse | None = None
    token: str | None = None
    """The lease holder's token, for ``seal``/``complete``/``release`` (``claimed`` only)."""


class LeaseLost(Exception):
    """The claim's lease ran out and another request took the key over: this one must not commit."""


class IdempotencyStore:
    """Keys in the state store. Safe to share between threads."""

    def __init__(
        self, db: StateDatabase, ttl_s: float, lease_s: float = 30.0, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.lease_s = lease_s
        self._clock = clock
        self._unsaved: OrderedDict[tuple[str, str], tuple[str, str, StoredResponse]] = OrderedDict()
        self._unsaved_lock = threading.Lock()

    def _where(self, owner: str, key: str) -> sa.ColumnElement[bool]:
        return sa.and_(IDEMPOTENCY.c.owner == owner, IDEMPOTENCY.c.key == key)

    def claim(self, owner: str, key: str, fingerprint: str) -> Claim:
        """Present ``key`` for a request with ``fingerprint`` (a hash of method, path, query and body)."""
        kept = self._kept(owner, key)
        if kept is not None:
            return Claim("mismatch") if kept[0] != fingerprint else Claim("replay", kept[2])
        now = self._clock()
        with self.db.engine.begin() as conn:
            conn.execute(IDEMPOTENCY.delete().where(self._where(owner, key), IDEMPOTENCY.c.expires_at < now))
        for _ in range(5):  # a row that vanishes or changes between our statements: look again
            token = secrets.token_hex(16)
            try:
                with self.db.engine.begin() as conn:
                    conn.execute(
                        IDEMPOTENCY.insert().values(
                            owner=owner,
                            key=key,
                            fingerprint=fingerprint,
                            state="pending",
                            token=token,
                            lease_until=now + self.lease_s,
                            expires_at=now + self.ttl_s,
                        )
                    )
                return Claim("claimed", token=token)
            except sa.exc.IntegrityError:
                pass
            with self.db.engine.begin() as conn:
                row = conn.execute(sa.select(IDEMPOTENCY).where(self._where(owner, key))).first()
                if row is None:
                    continue  # released since our insert failed: claim it
                if row.fingerprint != fingerprint:
                    return Claim("mismatch")
                if row.state == "done":
                    headers = msgspec.json.decode(row.headers or b"{}", type=dict[str, str])
                    return Claim("replay", StoredResponse(row.status, headers, bytes(row.body or b"")))
                if row.lease_until is not None and row.lease_until >= now:
                    return Claim("pending")
                if row.state == "committing":
                    return Claim("unknown")
                # Pending past its lease: its holder died before committing. Take it over, fenced by
                # the old token so that two late duplicates cannot both win.
                taken = conn.execute(
                    IDEMPOTENCY.update()
                    .where(self._where(owner, key), IDEMPOTENCY.c.state == "pending")
                    .where(IDEMPOTENCY.c.token == row.token if row.token is not None else IDEMPOTENCY.c.token.is_(None))
                    .values(token=token, lease_until=now + self.lease_s)
                )
                if taken.rowcount == 1:
                    return Claim("claimed", token=token)
            now = self._clock()
        return Claim("pending")

    def seal(self, owner: str, key: str, token: str) -> None:
        """Mark the claim as committing; call inside the legacy transaction, just before it commits.

        Raises:
            LeaseLost: the lease ran out and the key was taken over (the caller must roll back).
        """
        with self.db.engine.begin() as conn:
            sealed = conn.execute(
                IDEMPOTENCY.update()
                # Our own committing row seals again: the legacy transaction reran after a deadlock.
                .where(self._where(owner, key), IDEMPOTENCY.c.token == token)
                .where(IDEMPOTENCY.c.state.in_(("pending", "committing")))
                .values(state="committing", lease_until=self._clock() + self.lease_s)
            )
        if sealed.rowcount != 1:
            raise LeaseLost(f"the claim on idempotency key {key!r} was taken over")

    def complete(self, owner: str, key: str, token: str, fingerprint: str, response: StoredResponse) -> bool:
        """Store the response for replay, retrying a failing store; ``False`` when it kept failing.

        A response the store would not take is kept in memory and offered again by ``claim``.
        """
        for attempt in range(_STORE_ATTEMPTS):
            try:
                self._store(owner, key, token, response)
                return True
            except sa.exc.SQLAlchemyError as exc:
                log.warning("idempotency response not stored, retrying", key=key, attempt=attempt + 1, error=str(exc))
                time.sleep(0.05 * 2**attempt)
        log.error("idempotency response kept in memory only; the state store refused it", key=key)
        with self._unsaved_lock:
            self._unsaved[(owner, key)] = (fingerprint, token, response)
            while len(self._unsaved) > _KEPT_IN_MEMORY:
                self._unsaved.popitem(last=False)
        return False

    def _store(self, owner: str, key: str, token: str, response: StoredResponse) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                IDEMPOTENCY.update()
                .where(self._where(owner, key), IDEMPOTENCY.c.token == token)
                .values(
                    state="done",
                    status=response.status,
                    headers=msgspec.json.encode(response.headers).decode(),
                    body=response.body,
                    lease_until=None,
                )
            )

    def _kept(self, owner: str, key: str) -> tuple[str, str, StoredResponse] | None:
        """A response only this process holds; stored now if the state store takes it again."""
        with self._unsaved_lock:
            kept = self._unsaved.get((owner, key))
        if kept is None:
            return None
        try:
            self._store(owner, key, kept[1], kept[2])
        except sa.exc.SQLAlchemyError:
            return kept
        with self._unsaved_lock:
            self._unsaved.pop((owner, key), None)
        return kept

    def release(self, owner: str, key: str, token: str) -> None:
        """Forget a claim whose request failed before committing, so the client's retry can run.

        Only a ``pending`` row goes: a sealed (committing) key is never released.
        """
        with self.db.engine.begin() as conn:
            conn.execute(
                IDEMPOTENCY.delete().where(
                    self._where(owner, key), IDEMPOTENCY.c.token == token, IDEMPOTENCY.c.state == "pending"
                )
            )
