"""SQL Server Change Tracking: ``CHANGETABLE(CHANGES …)`` since a stored version, full diff to (re)start.

The cursor is one integer, the Change Tracking version the next pass reads
from. A pass goes:

- no cursor yet, or the cursor older than ``CHANGE_TRACKING_MIN_VALID_VERSION``
  (the change rows were cleaned up): take ``CHANGE_TRACKING_CURRENT_VERSION()``
  *first*, then run a full snapshot-hash diff, then store the version taken. A
  row changed during the load shows up again next pass; its fingerprint then
  drops it if what we sent is still current, so nothing is lost or sent twice;
- otherwise take the current version, read the net change per key since the
  cursor, and store the version taken before the read (never the highest one
  seen: a transaction that commits late with a lower version would be skipped).

``D`` rows are deletes by key. ``I``/``U`` rows are re-read through the
``Reader`` by their stored key, so the mapping's transforms and ``where`` apply;
a key that no longer reads back (deleted since, or filtered out by ``where``)
is a delete. Re-read rows whose fingerprint equals the delivered one are
dropped: a change to an unmapped column, or a change already delivered by the
full diff, sends nothing.

The SQL runs behind ``ChangeSource`` so the version bookkeeping can be tested
without a SQL Server; ``SqlServerChangeSource`` is the real one, and the
statements it runs are built here with SQLAlchemy Core (compile-tested in T-SQL).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from legacy_adapters.query.exact import exact_in
from legacy_adapters.reader import ReadQuery
from sync.changes.base import Change, LocalPass, PassLease, encode_key, fingerprint, read_current
from sync.changes.snapshot_hash import SnapshotHashDetector
from sync.exceptions import Fatal

if TYPE_CHECKING:
    from legacy_adapters.database import Database
    from legacy_adapters.query.resource import BoundField, Resource
    from legacy_adapters.reader import Reader
    from sync.state.base import StateStore

__all__ = (
    "ChangeSource",
    "ChangeTrackingDetector",
    "CtRow",
    "SqlServerChangeSource",
    "changes_statement",
    "current_version_statement",
    "key_columns",
    "min_valid_version_statement",
)

CtOp = Literal["I", "U", "D"]
CtRow = tuple[CtOp, int, tuple[Any, ...]]
"""(SYS_CHANGE_OPERATION, SYS_CHANGE_VERSION, stored primary-key values in key-column order)."""

_KEYS_PER_READ = 500
"""Keys per re-read: with composite keys still far below SQL Server's 2,100 parameters."""


# -- statements ------------------------------------------------------------------------------


class _Changes(sa.sql.expression.ColumnElement[Any]):
    """The ``CHANGES <table>`` argument of CHANGETABLE: a table name, not an expression."""

    inherit_cache = False

    def __init__(self, table: sa.Table) -> None:
        self.table = table


@compiles(_Changes)
def _compile_changes(element: _Changes, compiler: Any, **kw: Any) -> str:
    # The dialect quotes the (often upper-case or reserved) legacy name its own way.
    return f"CHANGES {compiler.preparer.format_table(element.table)}"


def key_columns(resource: Resource) -> tuple[sa.Column[Any], ...]:
    """The stored columns of the resource's key, in order: CHANGETABLE returns exactly these (the table's PK)."""
    return tuple(c for f in resource.key for c in f.columns)


def current_version_statement() -> sa.Select[Any]:
    """``SELECT CHANGE_TRACKING_CURRENT_VERSION()``: NULL when the database has Change Tracking off."""
    return sa.select(sa.func.CHANGE_TRACKING_CURRENT_VERSION())


def min_valid_version_statement(qualified_table: str) -> sa.Select[Any]:
    """``SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(?))``: NULL when the table is not tracked."""
    name = sa.bindparam("table", qualified_table, type_=sa.String)
    return sa.select(sa.func.CHANGE_TRACKING_MIN_VALID_VERSION(sa.func.OBJECT_ID(name)))


def changes_statement(resource: Resource, last: int) -> sa.Select[Any]:
    """``SELECT ct.SYS_CHANGE_OPERATION, ct.SYS_CHANGE_VERSION, ct.<pk…> FROM CHANGETABLE(CHANGES t, ?) AS ct``."""
    pk = [c.name for c in key_columns(resource)]
    last_param = sa.bindparam("last", last, type_=sa.BigInteger)
    ct = (
        sa.func.CHANGETABLE(_Changes(resource.table), last_param)
        .table_valued("SYS_CHANGE_OPERATION", "SYS_CHANGE_VERSION", *pk)
        .alias("ct")
    )
    columns = [ct.c.SYS_CHANGE_OPERATION, ct.c.SYS_CHANGE_VERSION, *(ct.c[n] for n in pk)]
    return sa.select(*columns).order_by(ct.c.SYS_CHANGE_VERSION)


# -- the change source seam -------------------------------------------------------------------


class ChangeSource(Protocol):
    """What the detector needs of Change Tracking; SQL Server in production, a fake in unit tests."""

    def current_version(self) -> int | None:
        """``CHANGE_TRACKING_CURRENT_VERSION()``."""
        ...

    def min_valid_version(self) -> int | None:
        """``CHANGE_TRACKING_MIN_VALID_VERSION`` of the resource's table; None when it is not tracked."""
        ...

    def changes(self, since: int) -> Iterator[CtRow]:
        """Net changes per key with a version above ``since``, oldest first."""
        ...


class SqlServerChangeSource:
    """Runs the Change Tracking statements on the legacy database."""

    def __init__(self, database: Database, resource: Resource) -> None:
        self.database, self.resource = database, resource

    def current_version(self) -> int | None:
        value = self.database.scalar(current_version_statement())
        return None if value is None else int(value)

    def min_valid_version(self) -> int | None:
        name = self.database.dialect.identifier_preparer.format_table(self.resource.table)
        value = self.database.scalar(min_valid_version_statement(name))
        return None if value is None else int(value)

    def changes(self, since: int) -> Iterator[CtRow]:
        for op, version, *pk in self.database.stream(changes_statement(self.resource, since)):
            yield str(op).strip(), int(version), tuple(pk)  # type: ignore[misc]


# -- the detector ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _StoredKeyIn:
    """Rows whose key columns hold one of these stored tuples (no transform: CHANGETABLE gives stored values)."""

    columns: tuple[sa.Column[Any], ...]
    keys: tuple[tuple[Any, ...], ...]

    def clause(self) -> sa.ColumnElement[bool]:
        # Code point by code point: SQL Server's collation would also match a key's case variant.
        if len(self.columns) == 1:
            return exact_in(self.columns[0], [k[0] for k in self.keys])
        return sa.or_(*(sa.and_(*(exact_in(c, [v]) for c, v in zip(self.columns, k, strict=True))) for k in self.keys))


class ChangeTrackingDetector:
    """Incremental detection from SQL Server Change Tracking; sees deletes."""

    sees_deletes = True

    def __init__(
        self,
        sync: str,
        resource: Resource,
        fields: tuple[BoundField, ...],
        reader: Reader,
        store: StateStore,
        batch_size: int = 5000,
        source: ChangeSource | None = None,
        lease: PassLease | None = None,
    ) -> None:
        self.sync, self.resource, self.fields = sync, resource, fields
        self.reader, self.store, self.batch_size = reader, store, batch_size
        self.lease = lease or LocalPass()
        self.source = source or SqlServerChangeSource(reader.database, resource)
        self.key_names = tuple(f.name for f in resource.key)
        self._columns = key_columns(resource)
        self._full: SnapshotHashDetector | None = None
        self._next: int | None = None
        self.reinitialised: str | None = None
        """Why the last pass ran a full diff (``initial``, ``expired``), None if it read changes."""

    def detect(self) -> Iterator[list[Change]]:
        cursor = self.store.get_cursor(self.sync) or {}
        last = cursor.get("version")
        min_valid = self.source.min_valid_version()
        if min_valid is None:
            table = self.reader.database.dialect.identifier_preparer.format_table(self.resource.table)
            raise Fatal(f"change tracking is not enabled on {table}: see docs/sync.md (ALTER TABLE … ENABLE …)")
        # Taken before reading anything: whatever commits during the pass is read again next time.
        current = self.source.current_version()
        if current is None:
            raise Fatal("change tracking is not enabled on the database: see docs/sync.md")
        self._full, self._next, self.reinitialised = None, None, None
        if last is None or last < min_valid:
            self.reinitialised = "initial" if last is None else "expired"
            self._full = SnapshotHashDetector(
                self.sync, self.resource, self.fields, self.reader, self.store, self.batch_size, self.lease
            )
            yield from self._full.detect()
        else:
            rows = self.source.changes(int(last))
            while batch := list(islice(rows, self.batch_size)):
                changes = self._resolve(batch)
                self.lease.renew()
                if changes:
                    yield changes
        self._next = current

    def commit(self) -> None:
        if self._full is not None:
            self._full.commit()
        if self._next is not None:
            self.store.set_cursor(self.sync, {"version": self._next})

    def abandon(self) -> None:
        if self._full is not None:
            self._full.abandon()

    def current(self, keys: Sequence[str]) -> tuple[dict[str, Change], set[str]]:
        return read_current(self.reader, self.resource, self.fields, keys, fingerprint)

    def _api_key(self, stored: tuple[Any, ...]) -> str:
        values, at = [], 0
        for field in self.resource.key:
            width = len(field.columns)
            raw = stored[at] if width == 1 else tuple(stored[at : at + width])
            values.append(field.codec.to_api(raw))
            at += width
        return encode_key(values)

    def _resolve(self, batch: Sequence[CtRow]) -> list[Change]:
        """CHANGETABLE rows -> changes: deletes as they are, inserts/updates re-read by key."""
        changes: list[Change] = []
        reread: dict[str, tuple[Any, ...]] = {}
        for op, _version, stored in batch:
            key = self._api_key(stored)
            if op == "D":
                changes.append(Change(key, "delete", None, None))
            else:
                reread[key] = stored
        found: dict[str, dict[str, Any]] = {}
        stored_keys = list(reread.values())
        for start in range(0, len(stored_keys), _KEYS_PER_READ):
            chunk = tuple(stored_keys[start : start + _KEYS_PER_READ])
            query = ReadQuery(self.resource, self.fields, (_StoredKeyIn(self._columns, chunk),))
            for fresh in self.reader.stream(query):
                found[encode_key([fresh[k] for k in self.key_names])] = fresh
        delivered = self.store.fingerprints(self.sync, list(reread))
        for key in reread:
            row = found.get(key)
            if row is None:  # gone since the change, or outside the mapping's where
                changes.append(Change(key, "delete", None, None))
                continue
            digest = fingerprint(row)
            if delivered.get(key) != digest:
                changes.append(Change(key, "upsert", row, digest))
        return changes
