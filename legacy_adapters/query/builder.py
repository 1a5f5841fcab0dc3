"""Build Core statements for reads: page, count, related rows, one row by key.

The builder knows nothing about HTTP; it takes bound fields, filters and sort
keys and returns a ``Select`` that any SQLAlchemy dialect compiles (the same
object becomes ``TOP``/``OFFSET FETCH`` with brackets on SQL Server and
``LIMIT ?`` on SQLite).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from legacy_adapters.query.keyset import SortKey
from legacy_adapters.query.unique import UNIQUE_IN_DATABASE

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField, Resource

__all__ = ("Condition", "build_count", "build_select", "order_for", "selected_columns", "where_clauses")


class Condition(Protocol):
    """Anything that narrows a select: comparisons, keysets, row filters."""

    def clause(self) -> sa.ColumnElement[bool]: ...


def order_for(resource: Resource, sort: Sequence[tuple[BoundField, bool]]) -> tuple[SortKey, ...]:
    """ORDER BY keys for ``sort`` with the resource key appended, so the order is total.

    Keyset pagination needs a total order: two jobs due the same day must still
    come in one fixed order or a page boundary could skip or repeat one. Every
    column but the key's may hold NULL, whatever the mapping says (see ``keyset.py``).
    """
    key_columns = {column.name for field in resource.key for column in field.columns}
    keys: list[SortKey] = []
    seen: set[str] = set()
    for field, descending in (*sort, *((k, False) for k in resource.key)):
        for column in field.columns:
            if column.name not in seen:
                seen.add(column.name)
                is_key = column.name in key_columns
                # A text key is the order's last word: its ties must be broken code point by code point.
                # Not needed when a unique index of the database makes such ties impossible (query/unique.py).
                exact = is_key and field.stored_text and not column.info.get(UNIQUE_IN_DATABASE)
                keys.append(SortKey(column, descending, nullable=not is_key, exact=exact, padded=field.padded))
    return tuple(keys)


def selected_columns(fields: Iterable[BoundField], order: Sequence[SortKey] = ()) -> list[sa.Column[Any]]:
    """Distinct columns to read: every column of ``fields``, then the sort columns (for cursors)."""
    columns: dict[str, sa.Column[Any]] = {}
    for field in fields:
        for column in field.columns:
            columns.setdefault(column.name, column)
    for key in order:
        columns.setdefault(key.column.name, key.column)  # type: ignore[arg-type]  # order_for builds SortKeys from Columns
    return list(columns.values())


def where_clauses(resource: Resource, conditions: Iterable[Condition]) -> list[sa.ColumnElement[bool]]:
    """The mapping's ``where`` and every condition: the rows a list, count or aggregate reads."""
    clauses = [c.clause() for c in conditions]
    return [resource.where, *clauses] if resource.where is not None else clauses


def build_select(
    resource: Resource,
    columns: Sequence[sa.Column[Any]],
    conditions: Iterable[Condition] = (),
    order: Sequence[SortKey] = (),
    limit: int | None = None,
    offset: int | None = None,
) -> sa.Select[Any]:
    """``SELECT columns FROM table WHERE mapping-where AND conditions ORDER BY … LIMIT/OFFSET``."""
    select = sa.select(*columns).select_from(resource.table)
    clauses = where_clauses(resource, conditions)
    if clauses:
        select = select.where(*clauses)
    if order:
        select = select.order_by(*(k.order_by() for k in order))
    if limit is not None:
        select = select.limit(limit)
    if offset:
        select = select.offset(offset)
    return select


def build_count(resource: Resource, conditions: Iterable[Condition] = ()) -> sa.Select[Any]:
    """``SELECT count(*)`` over the same rows a list would page through."""
    select = sa.select(sa.func.count()).select_from(resource.table)
    clauses = where_clauses(resource, conditions)
    return select.where(*clauses) if clauses else select
