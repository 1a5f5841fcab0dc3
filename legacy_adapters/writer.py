"""Writes into the legacy database: encode API bodies, insert, partial update, delete, compare-and-set.

Every write runs in one transaction. An update or delete names, in its WHERE
clause, every mapped column's value as it was read, so a row changed by anyone
in between is never overwritten: the statement touches no row and the caller
answers 412. Nothing here builds SQL from strings.
"""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from legacy_adapters.query.builder import Condition, selected_columns
from legacy_adapters.query.rows import RowDecoder
from legacy_adapters.query.values import coerce_json
from legacy_adapters.reader import _KeyEquals, row_etag
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
        typed = None if value is None else coerce_json(bound.spec.type, value)
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
    row = tuple(rows[0])
    decoder = RowDecoder.for_columns(resource, fields, columns)
    return StoredRow({c.name: v for c, v in zip(columns, row, strict=True)}, decoder.decode(row), row_etag(row))


def _write_table(resource: Resource, extra: Sequence[str] = ()) -> sa.TableClause:
    """The resource's table with unmapped columns a write needs too (defaults, the soft-delete flag)."""
    names = list(dict.fromkeys([*resource.table.c.keys(), *extra]))
    table = sa.table(resource.table.name, *(sa.column(n) for n in names), schema=resource.table.schema)
    return table


def _unchanged(table: sa.TableClause, before: StoredRow) -> list[sa.ColumnElement[bool]]:
    """Compare-and-set: every mapped column still holds what was read."""
    return [table.c[n].is_(None) if v is None else table.c[n] == v for n, v in before.raw.items()]


def insert_row(conn: sa.Connection, resource: Resource, encoded: Encoded) -> None:
    """Insert one row; ``RowExists`` when its key is taken (checked, since legacy tables often lack a PK)."""
    table = _write_table(resource, list(encoded.columns))
    key_columns = [c.name for f in resource.key for c in f.columns]
    taken = sa.select(sa.literal(1)).select_from(table).where(*(table.c[c] == encoded.columns[c] for c in key_columns))
    if conn.execute(taken.limit(1)).first() is not None:
        raise RowExists
    conn.execute(sa.insert(table).values({table.c[c]: v for c, v in encoded.columns.items()}))


def update_row(conn: sa.Connection, resource: Resource, before: StoredRow, columns: dict[str, Any]) -> None:
    """Set only ``columns``; ``RowChanged`` if the row moved since ``before`` was read."""
    if not columns:
        return
    table = _write_table(resource, list(columns))
    statement = sa.update(table).where(*_unchanged(table, before)).values({table.c[c]: v for c, v in columns.items()})
    if conn.execute(statement).rowcount != 1:
        raise RowChanged


def delete_row(conn: sa.Connection, resource: Resource, before: StoredRow) -> None:
    """Soft delete when the mapping names a flag column, else remove the row (the caller checked it may)."""
    spec = resource.spec.delete
    if spec is not None and spec.column:
        table = _write_table(resource, [spec.column])
        statement: Any = sa.update(table).where(*_unchanged(table, before)).values({table.c[spec.column]: spec.value})
    else:
        table = _write_table(resource)
        statement = sa.delete(table).where(*_unchanged(table, before))
    if conn.execute(statement).rowcount != 1:
        raise RowChanged
