"""Writes into the legacy database: encode API bodies, insert, partial update, delete, compare-and-set.

Every write runs in one transaction. An update or delete names, in its WHERE
clause, every mapped column's value as it was read, so a row changed by anyone
in between is never overwritten: the statement touches no row and the caller
answers 412. Nothing here builds SQL from strings.

A value the mapping accepts may still not fit its column where only the database
knows the limit (a ``VARCHAR(200)`` without ``length:`` in the mapping, an
``INTEGER`` too small for 12 digits). PostgreSQL, MariaDB (strict mode) and SQL
Server refuse it with SQLSTATE 22001/22003: that is bad input (422, the
candidate fields named), not a server failure. SQLite stores any length.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog

from legacy_adapters.dialects._odbc import sqlstate
from legacy_adapters.exceptions import KeyNotUnique, TransformError
from legacy_adapters.query.builder import Condition, selected_columns
from legacy_adapters.query.exact import exact_in
from legacy_adapters.query.rows import RowDecoder
from legacy_adapters.query.values import coerce_json
from legacy_adapters.reader import _KeyEquals, etag_of
from legacy_adapters.transforms import Unencodable

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField, Resource

__all__ = (
    "Encoded",
    "FieldProblem",
    "RowChanged",
    "RowExists",
    "StoredRow",
    "delete_row",
    "encode_body",
    "fetch_for_update",
    "insert_row",
    "update_row",
)


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    detail: str


@dataclass(slots=True)
class Encoded:
    """A request body in both forms: typed API values (for audit and replies) and stored column values."""

    api: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, Any] = field(default_factory=dict)
    problems: list[FieldProblem] = field(default_factory=list)


class RowChanged(Exception):
    """The row no longer holds the values it was read with (a concurrent write won)."""


class RowExists(Exception):
    """An insert names a key that a row already has."""


def encode_body(
    resource: Resource,
    body: Any,
    writable: AbcMapping[str, BoundField],
    *,
    partial: bool,
) -> Encoded:
    """Validate and encode one JSON object; every problem is collected, none is guessed around.

    Args:
        resource: the target resource.
        body: the decoded JSON (numbers as Decimal).
        writable: fields this caller may see; others are unknown to it.
        partial: PATCH semantics (only given fields); otherwise a full row for insert.
    """
    result = Encoded()
    if not isinstance(body, dict):
        result.problems.append(FieldProblem("", "expected a JSON object"))
        return result
    for name, value in body.items():
        bound = writable.get(name)
        if bound is None:
            result.problems.append(FieldProblem(name, "unknown field"))
            continue
        if bound.spec.read_only:
            result.problems.append(FieldProblem(name, "read-only field"))
            continue
        if partial and bound in resource.key:
            result.problems.append(FieldProblem(name, "a key field cannot be changed"))
            continue
        _encode_value(bound, value, result)
    if not partial:
        for bound in writable.values():
            if bound.name in body or bound.spec.read_only:
                continue
            if bound.spec.required or not _can_be_absent(resource, bound):
                result.problems.append(FieldProblem(bound.name, "required field is missing"))
            elif bound.codec.sentinels:
                _encode_value(bound, None, result)
        for column, stored in resource.spec.defaults.items():
            result.columns.setdefault(column, stored)
    return result


def _can_be_absent(resource: Resource, bound: BoundField) -> bool:
    defaulted = all(c in resource.spec.defaults for c in bound.codec.columns)
    return bool(bound.codec.sentinels) or bound.spec.nullable or defaulted


def _encode_value(bound: BoundField, value: Any, result: Encoded) -> None:
    try:
        typed = (
            None if value is None else coerce_json(bound.spec.type, value, bound.bounds, as_string=bound.spec.as_string)
        )
        if typed is None and not (bound.codec.sentinels or bound.spec.nullable):
            raise ValueError("cannot be null")
        stored = bound.codec.to_legacy(typed)
    except (ValueError, Unencodable) as exc:
        result.problems.append(FieldProblem(bound.name, str(exc)))
        return
    parts = stored if len(bound.columns) > 1 else (stored,)
    for column, part in zip(bound.codec.columns, parts, strict=True):
        result.columns[column] = part
    result.api[bound.name] = typed


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A row as read inside a write transaction: stored values by column, its API form and ETag."""

    raw: dict[str, Any]
    api: dict[str, Any]
    etag: str


def fetch_for_update(
    conn: sa.Connection, resource: Resource, key: Sequence[Any], conditions: Sequence[Condition]
) -> StoredRow | None:
    """Read one visible row inside the transaction, locking it where the engine can."""
    fields = tuple(resource.fields.values())
    columns = selected_columns(fields)
    clauses = [_KeyEquals(f, v).clause() for f, v in zip(resource.key, key, strict=True)]
    clauses.extend(c.clause() for c in conditions)
    if resource.where is not None:
        clauses.append(resource.where)
    statement = sa.select(*columns).select_from(resource.table).where(*clauses).limit(2)
    if conn.dialect.name != "sqlite":  # SQLite's BEGIN IMMEDIATE already holds the write lock
        statement = statement.with_for_update()
    rows = conn.execute(statement).all()
    if not rows:
        return None
    if len(rows) > 1:  # changing one of them at random would be a silent overwrite
        raise KeyNotUnique(resource.name, [f.name for f in resource.key])
    row = tuple(rows[0])
    decoder = RowDecoder.for_columns(resource, fields, columns)
    api = decoder.decode(row)
    return StoredRow({c.name: v for c, v in zip(columns, row, strict=True)}, api, etag_of(resource, row, api))


def _write_table(resource: Resource, extra: Sequence[str] = ()) -> sa.TableClause:
    """The resource's table with unmapped columns a write needs too (defaults, the soft-delete flag)."""
    names = list(dict.fromkeys([*resource.table.c.keys(), *extra]))
    table = sa.table(resource.table.name, *(sa.column(n) for n in names), schema=resource.table.schema)
    return table


def _bound(dialect: sa.Dialect, value: Any) -> Any:
    """``value`` as it must be bound on ``dialect`` to reach the database unchanged.

    MariaDB Connector/ODBC drops the fractional seconds of a bound DATETIME/TIME
    parameter (sqliteodbc keeps milliseconds): ``T = ?`` then never matches a
    ``DATETIME(6)`` value read a moment ago — every compare-and-set would answer
    412 — and an insert would lose the microseconds. Sent as text, the server
    converts it with the fraction kept. Like the driver, the text ignores a zone.
    """
    losing = dialect.name == "mysql" or (dialect.name == "sqlite" and dialect.driver == "pyodbc")
    if losing and isinstance(value, dt.datetime | dt.time) and value.microsecond:
        naive = value.replace(tzinfo=None)
        return sa.literal(naive.isoformat(" ") if isinstance(naive, dt.datetime) else naive.isoformat(), sa.String)
    return value


def _padded(resource: Resource) -> dict[str, bool]:
    """Per column: trailing spaces do not count when it is compared (see ``BoundField.padded``)."""
    return {c.name: f.padded for f in resource.fields.values() for c in f.columns}


def _same(table: sa.TableClause, name: str, value: Any, padded: dict[str, bool]) -> sa.ColumnElement[bool]:
    """``name`` holds exactly ``value``: text code point by code point (MariaDB and SQL Server ignore case)."""
    return exact_in(table.c[name], [value], padded=padded.get(name, True))


def _unchanged(
    dialect: sa.Dialect, table: sa.TableClause, before: StoredRow, resource: Resource
) -> list[sa.ColumnElement[bool]]:
    """Compare-and-set: every mapped column still holds what was read (a case variant is a change)."""
    padded = _padded(resource)
    return [
        table.c[n].is_(None) if v is None else _same(table, n, _bound(dialect, v), padded)
        for n, v in before.raw.items()
    ]


log = structlog.get_logger("bridgehead.writer")

_OUT_OF_RANGE = {
    "22001": "is too long for its column in the database",  # string data, right truncation
    "22003": "is out of range for its column in the database",  # numeric value out of range
}


def _write(conn: sa.Connection, resource: Resource, statement: sa.Executable, columns: AbcMapping[str, Any]) -> Any:
    """Execute a write; a value its column cannot hold becomes a ``TransformError`` (422)."""
    try:
        return conn.execute(statement)
    except sa.exc.DBAPIError as exc:
        state = sqlstate(exc)
        if state not in _OUT_OF_RANGE:
            raise
        log.info("value refused by the database", sqlstate=state, detail=str(getattr(exc, "orig", exc)))
        # The engine's message names the column but is not for clients (and differs per engine):
        # name the written fields that may be the culprit instead — free text without a declared
        # length (one with a length was checked), or numbers; dates, flags and codes always fit.
        types = ("string",) if state == "22001" else ("integer", "decimal", "number")
        names = [
            f.name
            for f in resource.fields.values()
            if f.spec.type in types
            and not (state == "22001" and (f.spec.length or f.spec.map))
            and any(c.name in columns for c in f.columns)
        ]
        if len(names) == 1:
            raise TransformError(names[0], f"the value {_OUT_OF_RANGE[state]}") from None
        raise TransformError("", f"a value (of {', '.join(names) or 'the row'}) {_OUT_OF_RANGE[state]}") from None


def _serialized(conn: sa.Connection, taken: sa.Select[Any], table: sa.TableClause, key: list[Any]) -> sa.Select[Any]:
    """Make "is this key taken?" hold until commit, so two inserts of one new key cannot both pass.

    Legacy tables often have no unique index to catch the second insert. SQLite's
    BEGIN IMMEDIATE already serialises writers; elsewhere the check takes a lock
    that a concurrent check of the same key must wait for.
    """
    name = conn.dialect.name
    if name == "mssql":
        return taken.with_hint(table, "WITH (UPDLOCK, HOLDLOCK)")  # a key-range lock, even on no row
    if name in ("mysql", "mariadb"):
        return taken.with_for_update()  # InnoDB locks the gap where the row would go
    if name == "postgresql":
        digest = hashlib.blake2b(repr((table.name, key)).encode(), digest_size=8).digest()
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(int.from_bytes(digest, "big", signed=True))))
    return taken


def insert_row(conn: sa.Connection, resource: Resource, encoded: Encoded) -> None:
    """Insert one row; ``RowExists`` when its key is taken (checked, since legacy tables often lack a PK)."""
    table = _write_table(resource, list(encoded.columns))
    key_columns = [c.name for f in resource.key for c in f.columns]
    values = {c: _bound(conn.dialect, v) for c, v in encoded.columns.items()}
    padded = _padded(resource)
    same_key = [_same(table, c, values[c], padded) for c in key_columns]
    taken = sa.select(sa.literal(1)).select_from(table).where(*same_key)
    if conn.execute(_serialized(conn, taken, table, [values[c] for c in key_columns]).limit(1)).first() is not None:
        raise RowExists
    _write(conn, resource, sa.insert(table).values({table.c[c]: v for c, v in values.items()}), encoded.columns)


def update_row(conn: sa.Connection, resource: Resource, before: StoredRow, columns: dict[str, Any]) -> None:
    """Set only ``columns``; ``RowChanged`` if the row moved since ``before`` was read."""
    if not columns:
        return
    table = _write_table(resource, list(columns))
    values = {table.c[c]: _bound(conn.dialect, v) for c, v in columns.items()}
    statement = sa.update(table).where(*_unchanged(conn.dialect, table, before, resource)).values(values)
    if _write(conn, resource, statement, columns).rowcount != 1:
        raise RowChanged


def delete_row(conn: sa.Connection, resource: Resource, before: StoredRow) -> None:
    """Soft delete when the mapping names a flag column, else remove the row (the caller checked it may)."""
    spec = resource.spec.delete
    if spec is not None and spec.column:
        table = _write_table(resource, [spec.column])
        unchanged = _unchanged(conn.dialect, table, before, resource)
        statement: Any = sa.update(table).where(*unchanged).values({table.c[spec.column]: spec.value})
    else:
        table = _write_table(resource)
        statement = sa.delete(table).where(*_unchanged(conn.dialect, table, before, resource))
    if conn.execute(statement).rowcount != 1:
        raise RowChanged
