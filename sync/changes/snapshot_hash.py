"""Snapshot-hash diff: the only detector that sees deletes on a table with no timestamps.

Rows stream in key order from the ``Reader`` one driver batch at a time (constant
memory), and each batch costs one round trip to the state store: its keys and
fingerprints go in together, the store adds the keys to the pass's seen set and
answers which rows differ from their fingerprint as last *delivered*
(``StateStore.snapshot_pass``). After the whole table was read, the fingerprinted
keys the pass did not see are the deletes, found in SQL, without holding every key
in Python.

The seen set belongs to this pass alone and ends with it (or with its process), and
the pass renews its planning lease after every batch it reads: a pass that lost the
lease stops with ``LeaseLost`` and never gets to the deletes, so two overlapping
passes cannot turn each other's half-read sets into deletes of rows that exist, and a
killed pass leaves nothing behind for the next one to trip over.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Literal

from legacy_adapters.reader import ReadQuery
from sync.changes.base import Change, LocalPass, PassLease, fingerprint, fingerprints, keys_encoder, read_current

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField, Resource
    from legacy_adapters.reader import Reader
    from sync.state.base import SnapshotPass, StateStore

__all__ = ("SnapshotHashDetector",)

_UPSERT: Literal["upsert"] = "upsert"


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
        self.keys_of = keys_encoder(tuple(f.name for f in resource.key))
        self.rows_seen: int | None = None
        """Source rows the last full pass read."""
        self._pass: SnapshotPass | None = None
        self._inflight: Future[list[int]] | None = None

    def detect(self) -> Iterator[list[Change]]:
        self._close()
        self.rows_seen = 0  # the approval gate compares it with recent passes
        keys_of = self.keys_of
        self._pass = seen = self.store.snapshot_pass(self.sync)
        # The store compares batch n on a thread of its own (its driver waits for SQLite's or the
        # server's work without the GIL) while this one reads and digests batch n + 1; one batch at a
        # time on the pass's connection, always waited for before the next or the pass's end.
        ahead = ThreadPoolExecutor(1, thread_name_prefix=f"snapshot-{self.sync}")
        try:
            waiting: tuple[list[dict[str, Any]], list[str], list[str]] | None = None
            query = ReadQuery(self.resource, self.fields)
            for batch in self.reader.stream_batches(query, batch_size=self.batch_size):
                self.rows_seen += len(batch)
                keys, prints = keys_of(batch), fingerprints(batch)
                changes = self._changes(*waiting) if waiting is not None else []
                self._inflight = ahead.submit(seen.see, list(zip(keys, prints, strict=True)))
                waiting = (batch, keys, prints)
                if changes:
                    yield changes
            if waiting is not None and (changes := self._changes(*waiting)):
                yield changes
            # Deletes only from a pass that read everything while holding the lease, and still holds it.
            self.lease.renew()
            for gone in seen.unseen(self.batch_size):
                self.lease.renew()
                yield [Change(key, "delete", None, None) for key in gone]
        finally:
            self._settle()
            ahead.shutdown()
            seen.close()
            if self._pass is seen:
                self._pass = None

    def _changes(self, batch: list[dict[str, Any]], keys: list[str], prints: list[str]) -> list[Change]:
        """The changes of the batch whose comparison is in flight, once it is done; the lease renewed."""
        inflight, self._inflight = self._inflight, None
        assert inflight is not None
        changed = inflight.result()
        self.lease.renew()
        # On a first pass every row of the batch: C-level maps, no frame per row.
        return list(map(Change, map(keys.__getitem__, changed), itertools.repeat(_UPSERT),
                        map(batch.__getitem__, changed), map(prints.__getitem__, changed)))  # fmt: skip

    def _settle(self) -> None:
        """Wait for a comparison still running (its outcome no longer matters) before the pass closes."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            wait([inflight])

    def _close(self) -> None:
        self._settle()  # abandon() may come while detect() is suspended with a batch in flight
        seen, self._pass = self._pass, None
        if seen is not None:
            seen.close()

    def commit(self) -> None:
        # The fingerprints move on delivery, not here: an undelivered row keeps showing as changed.
        self._close()

    def abandon(self) -> None:
        """The pass stopped early (lease lost, error): its seen set is scratch, never deletes."""
        self._close()

    def current(self, keys: Sequence[str]) -> tuple[dict[str, Change], set[str]]:
        return read_current(self.reader, self.resource, self.fields, keys, fingerprint)
