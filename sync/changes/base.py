"""The ChangeDetector protocol and the ``Change`` records every detector yields.

A detector reads the legacy resource through ``legacy_adapters.Reader`` (rows in
API form, so a fingerprint does not change when only padding would) and yields
batches of changes. It must not advance its cursor until ``commit`` is called,
which the engine does once the batch is safely in the outbox.

A pass runs under a ``PassLease``: the detector renews it as it reads (not only
when it yields), and a pass that lost it (another worker took over after it
lapsed) stops with ``LeaseLost`` before planning anything more, deletes above all.
``current`` re-reads rows by key as they are *now*: a retry or a replay sends
that, never the copy planned earlier.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import operator
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec
import sqlalchemy as sa

from legacy_adapters.query.exact import stored_equals
from legacy_adapters.reader import ReadQuery

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField, Resource
    from legacy_adapters.reader import Reader

__all__ = (
    "Change", "ChangeDetector", "LocalPass", "PassLease", "encode_key", "fingerprint", "fingerprints", "key_encoder",
    "keys_encoder", "read_current",
)  # fmt: skip

_KEYS_PER_READ = 500
"""Keys per re-read: with composite keys still far below SQL Server's 2,100 parameters."""


def encode_key(values: Sequence[Any]) -> str:
    """The legacy key as stored in the state tables: JSON text of the key values in API form."""
    return msgspec.json.encode(list(values)).decode()


def key_encoder(names: Sequence[str]) -> Callable[[dict[str, Any]], str]:
    """``encode_key`` of a row's key fields, made once per resource: one C-level pick and encode per row."""
    pick = operator.itemgetter(*names)
    encode = msgspec.json.encode
    if len(names) == 1:
        return lambda row: encode((pick(row),)).decode()
    return lambda row: encode(pick(row)).decode()


def keys_encoder(names: Sequence[str]) -> Callable[[Sequence[dict[str, Any]]], list[str]]:
    """``key_encoder`` for a whole batch: the same texts, with no Python frame per row."""
    pick = operator.itemgetter(*names)
    encode, decode = msgspec.json.encode, bytes.decode
    if len(names) == 1:
        return lambda rows: list(map(decode, map(encode, zip(map(pick, rows)))))  # zip of one: 1-tuples
    return lambda rows: list(map(decode, map(encode, map(pick, rows))))


def fingerprint(row: dict[str, Any]) -> str:
    """A 128-bit digest of the row in API form (field order does not matter)."""
    data = msgspec.json.encode(sorted(row.items()))
    return hashlib.blake2b(data, digest_size=16).hexdigest()


_DIGEST = functools.partial(hashlib.blake2b, digest_size=16)
_HEX = operator.methodcaller("hexdigest")


def fingerprints(rows: Sequence[dict[str, Any]]) -> list[str]:
    """``fingerprint`` of each row, the same digests, with the field names sorted once per batch.

    The rows of a batch come from one decoder, so they share their field names: the pairs are
    picked in the sorted order found for the first row (no per-row sort, which cost a third of the
    digest), by C-level maps with no Python frame per row. A batch where a row has other names
    (another count, or a name missing) takes ``fingerprint`` row by row.
    """
    if not rows:
        return []
    names = sorted(rows[0])
    if len(names) > 1 and len(set(map(len, rows))) == 1:
        pairs = map(list, map(zip, itertools.repeat(names), map(operator.itemgetter(*names), rows)))
        try:
            return list(map(_HEX, map(_DIGEST, map(msgspec.json.encode, pairs))))
        except KeyError:  # as many names as the first row's, not the same ones
            pass
    return [fingerprint(row) for row in rows]


class Change(msgspec.Struct, frozen=True, gc=False):
    """One changed row (or a delete). A ``Struct``, not a dataclass: a first pass makes one per source row, and
    a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost 0.6 µs of them; untracked by
    the cycle collector, as nothing it holds (a row of plain values) can refer back to it."""

    key: str
    op: Literal["upsert", "delete"]
    row: dict[str, Any] | None
    fingerprint: str | None
    changed_at: dt.datetime | None = None
    """When the legacy row changed, if the detector knows (updated-at columns); None otherwise."""


class PassLease(Protocol):
    """The planning lease of one detection pass."""

    pass_id: str

    def renew(self) -> None:
        """Extend the lease; raises ``sync.exceptions.LeaseLost`` once another pass took it."""
        ...


@dataclass
class LocalPass:
    """A pass nobody competes with (a detector used on its own: tests, benchmarks)."""

    pass_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def renew(self) -> None:
        return None


class ChangeDetector(Protocol):
    """Finds what changed in one resource since the last committed detection."""

    sees_deletes: bool

    def detect(self) -> Iterator[list[Change]]:
        """Batches of changes; the whole iteration is one detection pass."""
        ...

    def commit(self) -> None:
        """Persist the new cursor after the changes were planned."""
        ...

    def abandon(self) -> None:
        """The pass stopped before its end (lease lost, error): drop its scratch state, move no cursor."""
        ...

    def current(self, keys: Sequence[str]) -> tuple[dict[str, Change], set[str]]:
        """The rows of ``keys`` as they are now (upserts; a key missing is gone), and the keys that could
        not be looked up (a key value the column cannot hold): for those the caller keeps what it has."""
        ...


@dataclass(frozen=True, slots=True)
class _ApiKeyIn:
    """Rows whose key fields hold one of these API key tuples (encoded to stored values here)."""

    fields: tuple[BoundField, ...]
    keys: tuple[tuple[Any, ...], ...]

    def clause(self) -> sa.ColumnElement[bool]:
        alternatives = []
        for key in self.keys:
            parts: list[sa.ColumnElement[bool]] = []
            for f, value in zip(self.fields, key, strict=True):
                parts.append(stored_equals(f, f.codec.to_legacy(value)))
            alternatives.append(sa.and_(*parts))
        return sa.or_(*alternatives) if alternatives else sa.false()


def read_current(
    reader: Reader,
    resource: Resource,
    fields: tuple[BoundField, ...],
    keys: Sequence[str],
    digest: Callable[[dict[str, Any]], str],
    stamp: Callable[[dict[str, Any]], dt.datetime | None] = lambda _row: None,
) -> tuple[dict[str, Change], set[str]]:
    """Re-read rows by their encoded keys through the mapping (transforms and ``where`` apply)."""
    key_fields = tuple(resource.key)
    names = tuple(f.name for f in key_fields)
    readable: list[tuple[str, tuple[Any, ...]]] = []
    unreadable: set[str] = set()
    for key in keys:
        try:
            values = tuple(msgspec.json.decode(key))
            _ApiKeyIn(key_fields, (values,)).clause()  # the key must be storable to be looked up
        except Exception:
            unreadable.add(key)
            continue
        readable.append((key, values))
    found: dict[str, Change] = {}
    for start in range(0, len(readable), _KEYS_PER_READ):
        chunk = tuple(v for _, v in readable[start : start + _KEYS_PER_READ])
        for row in reader.stream(ReadQuery(resource, fields, (_ApiKeyIn(key_fields, chunk),))):
            key = encode_key([row[n] for n in names])
            found[key] = Change(key, "upsert", row, digest(row), stamp(row))
    wanted = {k for k, _ in readable}
    return {k: c for k, c in found.items() if k in wanted}, unreadable
