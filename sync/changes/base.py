"""The ChangeDetector protocol and the ``Change`` records every detector yields.

A detector reads the legacy resource through ``legacy_adapters.Reader`` (rows in
API form, so a fingerprint does not change when only padding would) and yields
batches of changes. It must not advance its cursor until ``commit`` is called,
which the engine does once the batch is safely in the outbox.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec

__all__ = ("Change", "ChangeDetector", "encode_key", "fingerprint")


def encode_key(values: Sequence[Any]) -> str:
    """The legacy key as stored in the state tables: JSON text of the key values in API form."""
    return msgspec.json.encode(list(values)).decode()


def fingerprint(row: dict[str, Any]) -> str:
    """A 128-bit digest of the row in API form (field order does not matter)."""
    data = msgspec.json.encode(sorted(row.items()))
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    op: Literal["upsert", "delete"]
    row: dict[str, Any] | None
    fingerprint: str | None
    changed_at: dt.datetime | None = None
    """When the legacy row changed, if the detector knows (updated-at columns); None otherwise."""


class ChangeDetector(Protocol):
    """Finds what changed in one resource since the last committed detection."""

    sees_deletes: bool

    def detect(self) -> Iterator[list[Change]]:
        """Batches of changes; the whole iteration is one detection pass."""
        ...

    def commit(self) -> None:
        """Persist the new cursor after the changes were planned."""
        ...
