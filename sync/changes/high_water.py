"""High-water mark on a rowversion or updated-at column: cheap, exact, blind to deletes.

The cursor is the highest value seen. The next pass reads ``column >= mark``
(not ``>``): a row written in the same second as the mark, after the pass that
set it, is still read. Rows read again at the mark are dropped when their
fingerprint equals the one last *delivered*, so they are not sent twice; a row
rewritten within the same tick (new values, same timestamp) differs and goes
out, and a row read but never delivered (dry-run, failure, crash) still differs
and is not lost. The same check drops rows whose timestamp moved but whose
mapped fields did not (a change to an unmapped column).

Comparing fingerprints rather than storing the keys seen at the mark keeps the
cursor small when a bulk load stamped a million rows with one timestamp.

A SQL Server ``rowversion`` is taken when a row is written, not when its
transaction commits: a long transaction can commit a value below a mark already
read. Where that matters, use the ``change_tracking`` detector instead.

A mark on a *local* time (a date + time pair in Europe/London, a naive DATETIME)
does not follow real time: when clocks go back, 01:10 (second pass, GMT) is
written after 01:50 (first pass, BST) and sorts below it, so ``>= mark`` would skip
it. Such marks are re-read from ``LOCAL_TIME_WINDOW`` below (wider than any zone's
DST shift); the delivered fingerprints drop what was already sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

from legacy_adapters.query.filters import Comparison
from legacy_adapters.reader import ReadQuery
from sync.changes.base import Change, LocalPass, PassLease, encode_key, fingerprint, read_current

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField, Resource
    from legacy_adapters.reader import Reader
    from sync.state.base import StateStore

__all__ = ("LOCAL_TIME_WINDOW", "HighWaterDetector")

LOCAL_TIME_WINDOW = dt.timedelta(hours=3)
"""Re-read below a local-time mark: DST shifts are 1 h almost everywhere, 2 h at most (Troll)."""
_UTC_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Z"})


class HighWaterDetector:
    """Rows at or above the stored mark of ``column``; see the module docstring for the boundary."""

    sees_deletes = False

    def __init__(
        self,
        sync: str,
        resource: Resource,
        fields: tuple[BoundField, ...],
        reader: Reader,
        store: StateStore,
        column: str,
        batch_size: int = 5000,
        lease: PassLease | None = None,
    ) -> None:
        self.sync, self.resource, self.fields, self.reader, self.store = sync, resource, fields, reader, store
        self.lease = lease or LocalPass()
        self.column = resource.fields[column]
        spec = self.column.spec
        self.local_time = spec.type == "datetime" and (spec.timezone or "") not in _UTC_ZONES
        # Fingerprints cover the sync's fields only (as the snapshot diff's do), so a row whose
        # timestamp moved while nothing the sync sends changed compares equal and stays quiet.
        self._printed = frozenset(f.name for f in fields)
        if self.column not in fields:
            self.fields = (*fields, self.column)
        self.batch_size = batch_size
        self.key_names = tuple(f.name for f in resource.key)
        self._next: dict[str, Any] | None = None

    def detect(self) -> Iterator[list[Change]]:
        cursor = self.store.get_cursor(self.sync) or {}
        mark = cursor.get("mark")
        conditions: tuple[Comparison, ...] = ()
        if mark is not None:
            value = dt.datetime.fromisoformat(mark) if self.column.spec.type == "datetime" else mark
            if self.local_time:
                value -= LOCAL_TIME_WINDOW
            conditions = (Comparison(self.column, "gte", value, self.column.name),)
        query = ReadQuery(self.resource, self.fields, conditions, sort=((self.column, False),))
        rows = self.reader.stream(query)
        new_mark = mark
        while batch := list(islice(rows, self.batch_size)):
            keyed = [(encode_key([r[k] for k in self.key_names]), r) for r in batch]
            delivered = self.store.fingerprints(self.sync, [k for k, _ in keyed])
            changes = []
            for key, row in keyed:
                raw = row[self.column.name]
                if raw is not None:  # rows arrive in column order: the last non-null value is the highest
                    new_mark = _plain(raw)
                digest = self._digest(row)
                if delivered.get(key) == digest:
                    continue  # read again at the mark, or touched without a mapped change: already there
                changes.append(Change(key, "upsert", row, digest, self._stamp(row)))
            self.lease.renew()
            if changes:
                yield changes
        if mark is not None and new_mark is not None and self.local_time and _before(new_mark, mark):
            new_mark = mark  # only the window was read: the mark never moves back
        self._next = {"mark": new_mark}

    def commit(self) -> None:
        if self._next is not None:
            self.store.set_cursor(self.sync, self._next)

    def abandon(self) -> None:
        return None

    def _digest(self, row: dict[str, Any]) -> str:
        return fingerprint({k: v for k, v in row.items() if k in self._printed})

    def _stamp(self, row: dict[str, Any]) -> dt.datetime | None:
        raw = row.get(self.column.name)
        return raw if isinstance(raw, dt.datetime) else None

    def current(self, keys: Sequence[str]) -> tuple[dict[str, Change], set[str]]:
        return read_current(self.reader, self.resource, self.fields, keys, self._digest, self._stamp)


def _before(a: Any, b: Any) -> bool:
    """``a`` sorts below ``b`` (ISO marks compared as instants)."""
    if isinstance(a, str) and isinstance(b, str):
        try:
            return dt.datetime.fromisoformat(a) < dt.datetime.fromisoformat(b)
        except (ValueError, TypeError):
            return a < b
    return bool(a < b)


def _plain(value: Any) -> Any:
    """Cursor values as JSON can hold them: datetimes as ISO text."""
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value
