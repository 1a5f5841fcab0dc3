"""Snapshot-hash diff: the only detector that sees deletes on a table with no timestamps.

Rows stream in key order from the ``Reader`` (constant memory) and are compared
in batches against the fingerprints of the rows as last *delivered*: a batch's
stored fingerprints come in one ``IN`` query, its keys are written to a scratch
``seen`` table, and after the pass an anti-join of fingerprints against ``seen``
yields the deletes, in SQL, without holding every key in Python.

The ``seen`` marks belong to this pass (its ``pass_id``), and the pass renews its
planning lease after every batch it reads: a pass that lost the lease stops with
``LeaseLost`` and never gets to the deletes, so two overlapping passes cannot
turn each other's half-marked sets into deletes of rows that exist.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING

from legacy_adapters.reader import ReadQuery
from sync.changes.base import Change, LocalPass, PassLease, encode_key, fingerprint, read_current

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField, Resource
    from legacy_adapters.reader import Reader
    from sync.state.base import StateStore

__all__ = ("SnapshotHashDetector",)


class SnapshotHashDetector:
    sees_deletes = True

    def __init__(
        self,
        sync: str,
        resource: Resource,
        fields: tuple[BoundField, ...],
        reader: Reader,
        store: StateStore,
        batch_size: int = 5000,
        lease: PassLease | None = None,
    ) -> None:
        self.sync, self.resource, self.fields = sync, resource, fields
        self.reader, self.store, self.batch_size = reader, store, batch_size
        self.lease = lease or LocalPass()
        self.key_names = tuple(f.name for f in resource.key)
        self.rows_seen: int | None = None
        """Source rows the last full pass read."""

    def detect(self) -> Iterator[list[Change]]:
        pass_id = self.lease.pass_id
        # Marks left by passes that lost their lease (or were killed): this pass holds it now.
        self.store.clear_seen(self.sync)
        self.rows_seen = 0  # the approval gate compares it with recent passes
        rows = self.reader.stream(ReadQuery(self.resource, self.fields))
        while batch := list(islice(rows, self.batch_size)):
            self.rows_seen += len(batch)
            keyed = [(encode_key([r[k] for k in self.key_names]), r) for r in batch]
            keys = [k for k, _ in keyed]
            stored = self.store.fingerprints(self.sync, keys)
            changes = []
            for key, row in keyed:
                digest = fingerprint(row)
                if stored.get(key) != digest:
                    changes.append(Change(key, "upsert", row, digest))
            self.store.mark_seen(self.sync, pass_id, keys)
            self.lease.renew()
            if changes:
                yield changes
        # Deletes only from a pass that read everything while holding the lease, and still holds it.
        self.lease.renew()
        for gone in self.store.unseen_keys(self.sync, pass_id, self.batch_size):
            self.lease.renew()
            yield [Change(key, "delete", None, None) for key in gone]

    def commit(self) -> None:
        # The fingerprints move on delivery, not here: an undelivered row keeps showing as changed.
        self.store.clear_seen(self.sync, self.lease.pass_id)

    def abandon(self) -> None:
        """The pass stopped early (lease lost, error): its marks are scratch, never deletes."""
        self.store.clear_seen(self.sync, self.lease.pass_id)

    def current(self, keys: Sequence[str]) -> tuple[dict[str, Change], set[str]]:
        return read_current(self.reader, self.resource, self.fields, keys, fingerprint)
