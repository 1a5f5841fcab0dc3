"""Sort order and keyset pagination that stay correct when sort columns hold NULL.

Legacy columns hold NULL whatever the mapping says, so every sort column but the
resource key's is treated as nullable. NULL sorts as the lowest value on every
backend: first ascending, last descending. That is SQL Server's, MariaDB's and
SQLite's own order (their indexes still serve the ORDER BY); PostgreSQL puts NULL
highest, so there ``NULLS FIRST``/``NULLS LAST`` is written out (``NullsLow``).

The keyset predicate ("rows after the last one of the previous page") follows
the same order: a NULL cursor value compares with ``IS NULL``/``IS NOT NULL``
instead of ``=``/``>``, which would be unknown and lose every row after it.
Sentinel values (``null_if``) are stored values like any other and sort where
their stored value sorts.

A text key column sorts and compares code point by code point on every backend
(``SortKey.exact``): under MariaDB's and SQL Server's case-insensitive collations
``'c0042'`` and ``'C0042'`` tie, and a page ending on one would skip the other
(``query/exact.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from legacy_adapters.query.exact import exact_after, exact_in, exact_order

__all__ = ("Keyset", "NullsLow", "SortKey")


class NullsLow(sa.sql.expression.ColumnElement[Any]):
    """``column ASC|DESC`` with NULL as the lowest value, on every dialect."""

    inherit_cache = True
    # Both attributes are part of the statement cache key: two orders must never share compiled SQL.
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("descending", InternalTraversal.dp_boolean),
    ]

    def __init__(self, column: sa.ColumnElement[Any], descending: bool) -> None:
        self.column = column
        self.descending = descending
        self.type = column.type

    def _plain(self) -> sa.ColumnElement[Any]:
        return self.column.desc() if self.descending else self.column.asc()


@compiles(NullsLow)
def _nulls_low(element: NullsLow, compiler: Any, **kw: Any) -> str:
    # SQL Server, MariaDB/MySQL and SQLite already sort NULL lowest (and have no NULLS FIRST before
    # SQLite 3.30 / at all on SQL Server and MariaDB).
    return str(compiler.process(element._plain(), **kw))


@compiles(NullsLow, "postgresql")
def _nulls_low_postgresql(element: NullsLow, compiler: Any, **kw: Any) -> str:
    ordered = element.column.desc().nulls_last() if element.descending else element.column.asc().nulls_first()
    return str(compiler.process(ordered, **kw))


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ORDER BY column and its direction."""

    column: sa.ColumnElement[Any]
    descending: bool = False
    nullable: bool = False
    """The column may hold NULL: true for every sort column but the resource key's."""
    exact: bool = False
    """A text key column: ordered and compared code point by code point on every backend (ties broken)."""
    padded: bool = True
    """Trailing spaces do not count (a ``trim``/``strip`` field); see ``query/exact.py``."""

    def order_by(self) -> sa.ColumnElement[Any]:
        """The ORDER BY term, NULL lowest."""
        if self.nullable:
            return NullsLow(self.column, self.descending)
        if self.exact:
            return exact_order(self.column, descending=self.descending, padded=self.padded)
        return self.column.desc() if self.descending else self.column.asc()

    def after(self, value: Any, text: bool | None = None) -> sa.ColumnElement[bool] | None:
        """Rows strictly after ``value`` in this key's order; None when none can be.

        ``value`` may be a bind parameter (a prepared page's); ``text`` then says whether it holds text.
        """
        column = self.column
        if value is None:  # NULL is lowest: after it come the values (ascending), nothing (descending)
            return None if self.descending else column.is_not(None)
        if self.exact:
            return exact_after(column, value, descending=self.descending, padded=self.padded, text=text)
        if not self.descending:
            later: sa.ColumnElement[bool] = column > value  # NULL is below every value: never after one
            return later
        before: sa.ColumnElement[bool] = column < value
        return sa.or_(before, column.is_(None)) if self.nullable else before

    def same(self, value: Any, text: bool | None = None) -> sa.ColumnElement[bool]:
        """Rows whose value ties with ``value`` (NULL ties with NULL)."""
        if value is None:
            return self.column.is_(None)
        return exact_in(self.column, [value], padded=self.padded, text=text) if self.exact else self.column == value


@dataclass(frozen=True, slots=True)
class Keyset:
    """Rows strictly after the last row of the previous page, in the page's sort order.

    ``(a, b, key) > (x, y, k)`` spelled out term by term, because SQL Server has no
    row values and a NULL in a row value makes the whole comparison unknown:
    ``a after x OR (a same x AND b after y) OR (a same x AND b same y AND key > k)``.
    """

    order: tuple[SortKey, ...]
    after: tuple[Any, ...]

    def append_to(self, select: sa.Select[Any]) -> sa.Select[Any]:
        return select.where(self.clause())

    def clause(self) -> sa.ColumnElement[bool]:
        return self._terms(self.after)

    @property
    def shape(self) -> tuple[type, ...]:
        """What the SQL depends on besides the values: which are NULL, which are text, and each value's
        type (it picks the bind processor: SQLite's turns a Decimal into a float)."""
        return tuple(type(value) for value in self.after)

    def template(self, prefix: str) -> sa.ColumnElement[bool]:
        """``clause()`` with each non-NULL value as the bind parameter ``{prefix}{position}``: the same SQL."""
        bound: tuple[Any, ...] = tuple(
            None if v is None else sa.bindparam(f"{prefix}{i}", v) for i, v in enumerate(self.after)
        )
        return self._terms(bound, tuple(isinstance(v, str) for v in self.after))

    def values(self, prefix: str) -> dict[str, Any]:
        """The values ``template(prefix)`` binds, by parameter name."""
        return {f"{prefix}{i}": v for i, v in enumerate(self.after) if v is not None}

    def _terms(self, values: tuple[Any, ...], texts: tuple[bool, ...] | None = None) -> sa.ColumnElement[bool]:
        terms: list[sa.ColumnElement[bool]] = []
        ties: list[sa.ColumnElement[bool]] = []
        for i, (key, value) in enumerate(zip(self.order, values, strict=True)):
            text = texts[i] if texts is not None else None
            later = key.after(value, text)
            if later is not None:
                terms.append(sa.and_(*ties, later) if ties else later)
            ties.append(key.same(value, text))
        if not terms:
            return sa.false()
        return sa.or_(*terms) if len(terms) > 1 else terms[0]
