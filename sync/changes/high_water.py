"""High-water mark on a rowversion or updated-at column: cheap, exact, blind to deletes.

The cursor is the highest value seen plus the keys seen *at* that value: the next
pass reads ``column >= mark`` and drops those keys, so rows written in the same
second (or a rowversion read mid-transaction) are neither lost nor sent twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from legacy_adapters.query.filters import Comparison
from legacy_adapters.reader import ReadQuery
from sync.changes.base import Change, encode_key, fingerprint

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField, Resource
    from legacy_adapters.reader import Reader
    from sync.state.sync_store import SyncStore

__all__ = ("HighWaterDetector",)


class HighWaterDetector:
    sees_deletes = False

    def __init__(
        self,
        sync: str,
        resource: Resource,
        fields: tuple[BoundField, ...],
        reader: Reader,
        store: SyncStore,
        column: str,
        batch_size: int = 5000,
    ) -> None:
        self.sync, self.resource, self.fields, self.reader, self.store = sync, resource, fields, reader, store
        self.column = resource.fields[column]
        if self.column not in fields:
            self.fields = (*fields, self.column)
        self.batch_size = batch_size
        self.key_names = tuple(f.name for f in resource.key)
        self._next: dict[str, Any] | None = None

    def detect(self) -> Iterator[list[Change]]:
        cursor = self.store.get_cursor(self.sync) or {}
        mark, at_mark = cursor.get("mark"), set(cursor.get("keys", ()))
        conditions = ()
        if mark is not None:
            value = dt.datetime.fromisoformat(mark) if self.column.spec.type == "datetime" else mark
            conditions = (Comparison(self.column, "gte", value, self.column.name),)
        query = ReadQuery(self.resource, self.fields, conditions, sort=((self.column, False),))
        rows = self.reader.stream(query)
        new_mark, new_keys = mark, set(at_mark)
        while batch := list(islice(rows, self.batch_size)):
            changes = []
            for row in batch:
                key = encode_key([row[k] for k in self.key_names])
                value = _plain(row[self.column.name])
                if value == mark and key in at_mark:
                    continue  # delivered by the previous pass
                if value != new_mark:
                    new_mark, new_keys = value, set()
                new_keys.add(key)
                stamp = row[self.column.name] if isinstance(row[self.column.name], dt.datetime) else None
                changes.append(Change(key, "upsert", row, fingerprint(row), stamp))
            if changes:
                yield changes
        self._next = {"mark": new_mark, "keys": sorted(new_keys)}

    def commit(self) -> None:
        if self._next is not None:
            self.store.set_cursor(self.sync, self._next)


def _plain(value: Any) -> Any:
    """Cursor values as JSON can hold them: datetimes as ISO text."""
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value
