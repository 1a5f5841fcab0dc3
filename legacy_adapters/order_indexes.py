"""Which list orders the database can read from an index, the key's tie-break included.

A list sorted by ``due_date`` is ``ORDER BY DUEDT, JOBNO``: the key breaks ties so that the
order is total and keyset pages neither skip nor repeat a row (``query/builder.py``). An index
gives that order only if it holds DUEDT and, right after it, the key's columns: itself, or as
the row locator its engine appends to every secondary index (SQL Server's clustered key,
InnoDB's primary key, a SQLite ``WITHOUT ROWID`` table's primary key or an ``INTEGER PRIMARY
KEY``, which is the rowid). Without one, the database reads every row that ties on DUEDT with
the page's rows and sorts them for each page: on the benchmark's JOBMAST, 564 undated jobs for
a page of 100, about 0.4 ms of the 1.75 ms of CPU such a list costs (bench/README.md).

Nothing here changes a query. ``bridgehead check --indexes`` prints the report, and whoever
owns the legacy database decides whether it gets the index.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from legacy_adapters.check import resources_to_check
from legacy_adapters.query.builder import order_for
from legacy_adapters.query.exact import ignores_case
from legacy_adapters.query.resource import BoundField, Resource
from legacy_adapters.query.unique import mark_unique_keys

if TYPE_CHECKING:
    from legacy_adapters.database import Database
    from legacy_adapters.mapping.model import Mapping

__all__ = ("OrderReport", "order_reports")

Column = tuple[str, bool]
"""A column of an order or an index, lower case, and whether it is descending."""


@dataclass(frozen=True, slots=True)
class _Index:
    name: str
    columns: tuple[Column, ...]
    """Its own columns, then the row locator the engine appends (ascending)."""
    own: int
    """How many of ``columns`` are declared in the index itself."""


@dataclass(frozen=True, slots=True)
class OrderReport:
    """One order a list can ask for, and the index that gives it, if any."""

    path: str
    sort: str
    """As a client writes it: ``due_date``, ``-due_date``; empty for the default order."""
    order: tuple[str, ...]
    """The ORDER BY the gateway sends, as the columns' names (``DUEDT DESC``, ``JOBNO``)."""
    index: str | None = None
    """The index that gives the whole order, if one does."""
    equal_first: tuple[str, ...] = ()
    """Fields (or columns) the index holds before the order: a list must filter them with ``=``."""
    partial: tuple[str, ...] = ()
    """Indexes that give the sort's columns but not the key after them."""
    suggest: tuple[tuple[str, ...], ...] = ()
    """Indexes that would give the whole order, as their columns: one for each of ``partial`` (its
    columns before the sort kept, for the lists that filter them with ``=``), or the order itself."""
    unservable: str | None = None
    """Why no index can give this order at all."""

    @property
    def served(self) -> bool:
        return self.index is not None

    def __str__(self) -> str:
        order = ", ".join(self.order)
        head = f"{self.path}: {f'sort={self.sort}' if self.sort else 'default order'} ({order})"
        if self.index is not None:
            after = f", after '=' filters on {', '.join(self.equal_first)}" if self.equal_first else ""
            return f"{head}: read in order from index {self.index}{after}"
        if self.unservable is not None:
            return f"{head}: sorted by the database for every page: {self.unservable}"
        wanted = "an index on " + " or ".join(f"({', '.join(columns)})" for columns in self.suggest) + " would give it"
        if self.partial:
            which = (
                f"index {self.partial[0]} gives"
                if len(self.partial) == 1
                else f"indexes {', '.join(self.partial)} give"
            )
            return (
                f"{head}: {which} the sort but not the key after it, so every row tied on it is read and sorted"
                f" for each page; {wanted}"
            )
        return f"{head}: no index gives it, so the database sorts every matching row for each page; {wanted}"


def order_reports(mapping: Mapping, database: Database) -> list[OrderReport]:
    """For every resource on ``database``: its default order, then each sortable field both ways."""
    resources = list(resources_to_check(mapping))
    # Where collations ignore case, a text key the database does not keep unique is ordered code point
    # by code point, which no index gives; the gateway reads the same catalogue at start-up.
    mark_unique_keys((r for _, r in resources), lambda _resource: database)
    indexes: dict[tuple[str | None, str], list[_Index]] = {}
    reports: list[OrderReport] = []
    for path, resource in resources:
        where = (resource.table.schema, resource.table.name)
        if where not in indexes:
            with database.errors():
                indexes[where] = _indexes(database, resource.table)
        for sort, order in _orders(resource):
            keys = order_for(resource, order)
            # An exact key is ordered by its bytes only where the collation ignores case (query/exact.py).
            exact = ignores_case(database.dialect) and any(k.exact for k in keys)
            reports.append(_report(path, sort, resource, keys, indexes[where], exact=exact))
    return reports


def _orders(resource: Resource) -> Iterator[tuple[str, Sequence[tuple[BoundField, bool]]]]:
    default = [(resource.fields[item.lstrip("-+")], item.startswith("-")) for item in resource.spec.default_sort or ()]
    yield "", default
    for name, field in resource.fields.items():
        if field.sortable:
            yield name, [(field, False)]
            yield f"-{name}", [(field, True)]


def _report(
    path: str, sort: str, resource: Resource, keys: Sequence[Any], indexes: list[_Index], *, exact: bool
) -> OrderReport:
    order = tuple(f"{k.column.name} DESC" if k.descending else str(k.column.name) for k in keys)
    report = OrderReport(path, sort, order)
    if exact:
        return replace(
            report,
            unservable="the key is text compared code point by code point (the collation ignores case and no"
            " unique index holds the key), which no index gives",
        )
    wanted: tuple[Column, ...] = tuple((str(k.column.name).lower(), bool(k.descending)) for k in keys)
    sort_length = len(wanted) - sum(1 for k in keys if not k.nullable)  # the key's columns come last
    best: tuple[int, _Index] | None = None
    parts: list[tuple[int, _Index]] = []
    for index in indexes:
        at = _find(index.columns, wanted)
        if at is not None and (best is None or at < best[0]):
            best = (at, index)
        if sort_length:
            at = _find(index.columns[: index.own], wanted[:sort_length])
            if at is not None:
                parts.append((at, index))
    if best is not None:
        at, index = best
        return replace(report, index=index.name, equal_first=_names(resource, index.columns[:at]))
    if not parts:
        return replace(report, suggest=(order,))
    parts.sort(key=lambda part: part[0])  # the fewest columns before the sort first
    # The suggestions keep the order's directions: (DUEDT DESC, JOBNO) read backwards is (DUEDT, JOBNO DESC).
    suggest = dict.fromkeys(tuple(_original(resource, c) for c, _ in index.columns[:at]) + order for at, index in parts)
    return replace(report, partial=tuple(index.name for _, index in parts), suggest=tuple(suggest))


def _find(columns: tuple[Column, ...], wanted: tuple[Column, ...]) -> int | None:
    """Where ``wanted`` runs in ``columns``, read forwards or backwards (every direction flipped)."""
    names = [c for c, _ in wanted]
    flipped = tuple((c, not d) for c, d in wanted)
    for at in range(len(columns) - len(wanted) + 1):
        run = columns[at : at + len(wanted)]
        if [c for c, _ in run] == names and run in (wanted, flipped):
            return at
    return None


def _names(resource: Resource, columns: Sequence[Column]) -> tuple[str, ...]:
    return tuple(_field_of(resource, c) for c, _ in columns)


def _field_of(resource: Resource, column: str) -> str:
    for name, field in resource.fields.items():
        if [str(c.name).lower() for c in field.columns] == [column]:
            return f"{name} ({field.columns[0].name})"
    return _original(resource, column)


def _original(resource: Resource, column: str) -> str:
    """The column's name as the mapping spells it (the catalogue may fold case)."""
    for field in resource.fields.values():
        for c in field.columns:
            if str(c.name).lower() == column:
                return str(c.name)
    return column


def _indexes(database: Database, table: sa.Table) -> list[_Index]:
    """``table``'s indexes as the engine keeps them: each one's columns, then the row locator it appends."""
    dialect = database.dialect.name
    reader = _CATALOGUES.get("mysql" if dialect == "mariadb" else dialect)
    if reader is None:
        return []
    result: list[_Index] = []
    for name, (columns, appended) in reader(database, table).items():
        own = {c for c, _ in columns}
        tail = tuple((c, False) for c in appended if c not in own)
        result.append(_Index(name, columns + tail, len(columns)))
    return result


Catalogue = dict[str, tuple[tuple[Column, ...], tuple[str, ...]]]
"""Index name -> (its key columns up to the first expression, the columns the engine appends)."""


def _grouped(rows: Sequence[Sequence[Any]]) -> dict[str, tuple[Column, ...]]:
    """``(index, column or None, descending)`` rows, in key order -> each index's columns, up to the first
    expression (None: the order an index gives stops there)."""
    grouped: dict[str, list[Column | None]] = {}
    for name, column, descending in rows:
        entry = None if column is None else (str(column).lower(), bool(int(descending or 0)))
        grouped.setdefault(str(name), []).append(entry)
    result: dict[str, tuple[Column, ...]] = {}
    for name, entries in grouped.items():
        cut = entries.index(None) if None in entries else len(entries)
        if cut:
            result[name] = tuple(e for e in entries[:cut] if e is not None)
    return result


# Each catalogue is read with a query of its own: SQLAlchemy's reflection gives no index column
# directions on most dialects, and over psqlODBC and sqliteodbc it fails (arrays and integers
# come back as text).


def _sqlite(database: Database, table: sa.Table) -> Catalogue:
    # index_xinfo lists an index's own columns (key = 1), then what SQLite appends: the rowid
    # (cid -1), or the primary key of a WITHOUT ROWID table, whose rows are kept in that key's order.
    rows = database.fetch_all(
        sa.text(
            'SELECT il.name, x.cid, x.name, x."desc", x."key" FROM pragma_index_list(:t) AS il,'
            " pragma_index_xinfo(il.name) AS x ORDER BY il.seq, x.seqno"
        ).bindparams(t=table.name)
    )
    info = database.fetch_all(sa.text("SELECT name, type, pk FROM pragma_table_info(:t)").bindparams(t=table.name))
    primary = [(str(name).lower(), str(kind).upper()) for name, kind, pk in info if int(pk or 0)]
    rowid = primary[0][0] if len(primary) == 1 and primary[0][1] == "INTEGER" else None  # the rowid's own name
    own = _grouped([(name, column, descending) for name, _cid, column, descending, key in rows if int(key)])
    appended: dict[str, list[str | None]] = {}
    for name, cid, column, _descending, key in rows:
        if not int(key):
            appended.setdefault(str(name), []).append(rowid if int(cid) == -1 else str(column).lower())
    catalogue: Catalogue = {}
    for name, columns in own.items():
        tail = appended.get(name, [])
        cut = tail.index(None) if None in tail else len(tail)  # a rowid with no column of its own
        catalogue[name] = (columns, tuple(c for c in tail[:cut] if c is not None))
    if rowid is not None:
        catalogue["(rowid)"] = (((rowid, False),), ())  # the table itself, in INTEGER PRIMARY KEY order
    return catalogue


def _postgresql(database: Database, table: sa.Table) -> Catalogue:
    rows = database.fetch_all(
        sa.text(
            "SELECT i.relname, a.attname, ix.indoption[k.n - 1] & 1"
            " FROM pg_catalog.pg_index ix"
            " JOIN pg_catalog.pg_class t ON t.oid = ix.indrelid"
            " JOIN pg_catalog.pg_namespace ns ON ns.oid = t.relnamespace"
            " JOIN pg_catalog.pg_class i ON i.oid = ix.indexrelid"
            " CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)"
            " LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum AND k.attnum > 0"
            " WHERE t.relname = :t AND ns.nspname = COALESCE(:s, current_schema()) AND k.n <= ix.indnkeyatts"
            " ORDER BY i.relname, k.n"
        ).bindparams(t=table.name, s=table.schema)
    )
    return _carrying(_grouped(rows), None)  # a heap tuple's id is no column


def _mysql(database: Database, table: sa.Table) -> Catalogue:
    rows = database.fetch_all(
        sa.text(
            "SELECT s.INDEX_NAME, s.COLUMN_NAME, CASE WHEN s.COLLATION = 'D' THEN 1 ELSE 0 END, t.ENGINE"
            " FROM information_schema.STATISTICS s JOIN information_schema.TABLES t"
            " ON t.TABLE_SCHEMA = s.TABLE_SCHEMA AND t.TABLE_NAME = s.TABLE_NAME"
            " WHERE s.TABLE_SCHEMA = COALESCE(:s, DATABASE()) AND s.TABLE_NAME = :t"
            " ORDER BY s.INDEX_NAME, s.SEQ_IN_INDEX"
        ).bindparams(t=table.name, s=table.schema)
    )
    indexes = _grouped([row[:3] for row in rows])
    # InnoDB keeps the rows in primary-key order and appends that key to every other index.
    innodb = any(str(row[3] or "").lower() == "innodb" for row in rows)
    return _carrying(indexes, "PRIMARY" if innodb else None)


def _mssql(database: Database, table: sa.Table) -> Catalogue:
    name = table.name.replace("]", "]]")
    qualified = f"[{table.schema.replace(']', ']]')}].[{name}]" if table.schema else f"[{name}]"
    rows = database.fetch_all(
        sa.text(
            "SELECT i.name, c.name, ic.is_descending_key, i.type FROM sys.indexes i"
            " JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id"
            " JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id"
            " WHERE i.object_id = OBJECT_ID(:q) AND ic.key_ordinal > 0 ORDER BY i.index_id, ic.key_ordinal"
        ).bindparams(q=qualified)
    )
    indexes = _grouped([row[:3] for row in rows])
    # Every nonclustered index carries the clustered index's key (a heap's row id is no column).
    return _carrying(indexes, next((str(row[0]) for row in rows if int(row[3]) == 1), None))


def _carrying(indexes: dict[str, tuple[Column, ...]], locator: str | None) -> Catalogue:
    """Every index with the columns of the index named ``locator`` appended (the one the rows are kept
    in: SQL Server's clustered index, InnoDB's primary key), or nothing appended (``None``)."""
    appended = tuple(c for c, _ in indexes.get(locator, ())) if locator is not None else ()
    return {name: (columns, appended) for name, columns in indexes.items()}


_CATALOGUES = {"sqlite": _sqlite, "postgresql": _postgresql, "mysql": _mysql, "mssql": _mssql}
