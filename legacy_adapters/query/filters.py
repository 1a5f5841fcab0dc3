"""Filters in API terms that append themselves to a Core ``Select`` in legacy terms.

Values arrive typed (``values.parse_value``) and leave encoded by the field's
codec, bound as parameters: ``due_date[lt]=2026-12-01`` becomes
``DUEDT < :p AND DUEDT NOT IN (0, 99999999)`` with ``p = 20261201``. Nothing is
filtered in Python and no SQL is built from strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from legacy_adapters.exceptions import QueryError
from legacy_adapters.transforms import Unencodable

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField

__all__ = (
    "OPERATORS",
    "Comparison",
    "Keyset",
    "MatchNothing",
    "Operator",
    "Related",
    "SortKey",
    "lexicographic",
)

Operator = Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "like", "isnull"]
OPERATORS: tuple[Operator, ...] = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "like", "isnull")
_RANGE = frozenset({"lt", "lte", "gt", "gte"})
_LIKE_ESCAPE = "\\"


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ORDER BY column and its direction."""

    column: sa.Column[Any]
    descending: bool = False


def lexicographic(
    columns: tuple[sa.ColumnElement[Any], ...], values: tuple[Any, ...], op: str, descending: tuple[bool, ...]
) -> sa.ColumnElement[bool]:
    """``(a, b) > (x, y)`` spelled out for engines without row values (SQL Server).

    ``a > x OR (a = x AND b > y)``; a descending column flips its comparison.
    ``op`` is one of lt, lte, gt, gte; the "or equal" applies to the last column only.
    """
    strict = op.rstrip("e") if op.endswith("te") else op
    terms = []
    for i, (column, value) in enumerate(zip(columns, values, strict=True)):
        last = i == len(columns) - 1
        this_op = op if last else strict
        if descending[i]:
            this_op = {"lt": "gt", "gt": "lt", "lte": "gte", "gte": "lte"}[this_op]
        compare = _COMPARE[this_op](column, value)
        equal_before = [c == v for c, v in zip(columns[:i], values[:i], strict=True)]
        terms.append(sa.and_(*equal_before, compare) if equal_before else compare)
    return sa.or_(*terms) if len(terms) > 1 else terms[0]


_COMPARE = {
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
}


@dataclass(frozen=True)
class Comparison:
    """``field[op]=value`` with an already typed API value (a tuple for ``in``, a bool for ``isnull``)."""

    field: BoundField
    op: Operator
    value: Any
    parameter: str
    """The query parameter as the client wrote it, for error messages."""

    def append_to(self, select: sa.Select[Any]) -> sa.Select[Any]:
        return select.where(self.clause())

    def clause(self) -> sa.ColumnElement[bool]:
        """The WHERE condition in legacy terms (built once: request validation and the query share it)."""
        return self._clause

    @cached_property
    def _clause(self) -> sa.ColumnElement[bool]:
        field, columns = self.field, self.field.columns
        if self.op == "isnull":
            return self._null_clause(self.value)
        if self.op == "like":
            return self._like_clause()
        if self.op in _RANGE and not field.sortable:
            raise QueryError(
                self.parameter,
                f"{field.name} cannot be compared with {self.op}: its stored values do not sort like its API values",
            )
        if self.op == "in":
            encoded = [self._encode(v) for v in self.value]
            if len(columns) > 1:
                condition = sa.or_(*(sa.and_(*(c == p for c, p in zip(columns, e, strict=True))) for e in encoded))
            else:
                condition = columns[0].in_(encoded)
        else:
            encoded_value = self._encode(self.value)
            parts = encoded_value if len(columns) > 1 else (encoded_value,)
            if self.op == "eq":
                condition = sa.and_(*(c == p for c, p in zip(columns, parts, strict=True)))
            elif self.op == "ne":
                condition = sa.or_(*(c != p for c, p in zip(columns, parts, strict=True)))
            else:
                condition = lexicographic(columns, tuple(parts), self.op, (False,) * len(columns))
        # A sentinel is "no value" in the API, so it never equals, differs from or orders against a value.
        return sa.and_(condition, self._null_clause(False)) if field.codec.sentinels else condition

    def _encode(self, value: Any) -> Any:
        try:
            encoded = self.field.codec.to_legacy(value)
        except Unencodable as exc:
            raise QueryError(self.parameter, str(exc)) from None
        if encoded is None:
            raise QueryError(self.parameter, "use isnull to match missing values")
        return encoded

    def _null_clause(self, is_null: bool) -> sa.ColumnElement[bool]:
        column = self.field.columns[0]
        sentinels = list(self.field.codec.sentinels)
        if is_null:
            return sa.or_(column.is_(None), column.in_(sentinels)) if sentinels else column.is_(None)
        present = column.is_not(None)
        return sa.and_(present, column.not_in(sentinels)) if sentinels else present

    def _like_clause(self) -> sa.ColumnElement[bool]:
        field = self.field
        if field.spec.type != "string" or field.spec.map is not None or len(field.columns) > 1:
            raise QueryError(self.parameter, f"like applies to text fields; {field.name} is not plain text")
        text = str(self.value)
        escaped = text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        # '[' opens a character class in SQL Server's LIKE ('[A-C]%'); escaped, every engine reads it literally.
        for wildcard in ("%", "_", "["):
            escaped = escaped.replace(wildcard, _LIKE_ESCAPE + wildcard)
        pattern = escaped.replace("*", "%")
        column: sa.ColumnElement[Any] = field.columns[0]
        # CHAR columns hold trailing pad spaces: a pattern ending in * absorbs them and keeps
        # the index usable; any other pattern must compare against the trimmed value.
        if field.spec.transform == "trim" and not text.endswith("*"):
            column = sa.func.rtrim(column)
        return column.like(pattern, escape=_LIKE_ESCAPE)


@dataclass(frozen=True, slots=True)
class Keyset:
    """Rows strictly after the last row of the previous page, in the page's sort order."""

    order: tuple[SortKey, ...]
    after: tuple[Any, ...]

    def append_to(self, select: sa.Select[Any]) -> sa.Select[Any]:
        return select.where(self.clause())

    def clause(self) -> sa.ColumnElement[bool]:
        return lexicographic(
            tuple(k.column for k in self.order), self.after, "gt", tuple(k.descending for k in self.order)
        )


@dataclass(frozen=True, slots=True)
class MatchNothing:
    """A condition no row meets (a row-filter claim the column could never hold)."""

    def append_to(self, select: sa.Select[Any]) -> sa.Select[Any]:
        return select.where(self.clause())

    def clause(self) -> sa.ColumnElement[bool]:
        return sa.false()


@dataclass(frozen=True, slots=True)
class Related:
    """Rows that have a related row meeting ``conditions``: ``EXISTS (SELECT … WHERE link AND conditions)``.

    Lets a row filter reach through a to-one relation: an operation is visible
    when its job belongs to the token's customer.
    """

    links: tuple[tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]], ...]
    conditions: tuple[Any, ...]
    where: sa.ColumnElement[bool] | None = None

    def append_to(self, select: sa.Select[Any]) -> sa.Select[Any]:
        return select.where(self.clause())

    def clause(self) -> sa.ColumnElement[bool]:
        inner = [outer == related for outer, related in self.links]
        inner.extend(c.clause() for c in self.conditions)
        if self.where is not None:
            inner.append(self.where)
        return sa.exists().where(*inner)
