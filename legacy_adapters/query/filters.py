"""Filters in API terms that append themselves to a Core ``Select`` in legacy terms.

Values arrive typed (``values.parse_value``) and leave encoded by the field's
codec, bound as parameters: ``due_date[lt]=2026-12-01`` becomes
``DUEDT < :p AND DUEDT NOT IN (0, 99999999)`` with ``p = 20261201``. Nothing is
filtered in Python and no SQL is built from strings.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from legacy_adapters.exceptions import QueryError
from legacy_adapters.query.coded import coded_clause
from legacy_adapters.query.condition import MappingCondition
from legacy_adapters.query.exact import exact_in, exact_ne, stored_equals
from legacy_adapters.query.like import PatternMatch
from legacy_adapters.transforms import Unencodable
from legacy_adapters.transforms.numbers import on_grid

if TYPE_CHECKING:
    from legacy_adapters.query.like import LikePattern
    from legacy_adapters.query.resource import BoundField
    from legacy_adapters.transforms.text import CodeMap

__all__ = (
    "OPERATORS",
    "Comparison",
    "MatchNothing",
    "Operator",
    "Related",
    "lexicographic",
)

Operator = Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "like", "ilike", "isnull"]
OPERATORS: tuple[Operator, ...] = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "like", "ilike", "isnull")
_RANGE = frozenset({"lt", "lte", "gt", "gte"})


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
    """``field[op]=value`` with an already typed API value (a tuple for ``in``, a bool for ``isnull``,
    a ``LikePattern`` for ``like``/``ilike``).

    The rule every operator keeps: it selects exactly the rows whose *served* value satisfies
    it. A null (SQL NULL, a sentinel, an unknown code under ``unmapped: null``) equals, differs
    from and orders against nothing; only ``isnull=true`` finds it.
    """

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

    @property
    def shape(self) -> Hashable | None:
        """What the SQL of ``clause()`` depends on besides ``values``: two comparisons of one shape are one
        ``template`` with different values bound. None: this one is built afresh (``like``, two columns)."""
        return self._built[1]

    @property
    def values(self) -> tuple[Any, ...]:
        """The stored values ``template`` binds, in the order of its parameters."""
        return self._built[2]

    def template(self, prefix: str) -> sa.ColumnElement[bool]:
        """``clause()`` with ``values`` as bind parameters ``{prefix}0``, ``{prefix}1``, …: the same SQL."""
        names = itertools.count()
        return self._build(lambda value: sa.bindparam(f"{prefix}{next(names)}", value))[0]

    @cached_property
    def _clause(self) -> sa.ColumnElement[bool]:
        return self._built[0]

    @cached_property
    def _built(self) -> tuple[sa.ColumnElement[bool], Hashable | None, tuple[Any, ...]]:
        """The clause, its shape and its values, from one build (request validation makes it)."""
        values: list[Any] = []

        def keep(value: Any) -> Any:
            values.append(value)
            return value

        clause, route = self._build(keep)
        if route is None:
            return clause, None, ()
        shape = (self.field.name, self.op, route, tuple(type(v) for v in values))
        try:
            hash(shape)
        except TypeError:  # an unhashable value in a route: no template, built per request
            return clause, None, ()
        return clause, shape, tuple(values)

    def _build(self, bind: Callable[[Any], Any]) -> tuple[sa.ColumnElement[bool], Hashable | None]:
        """The WHERE condition in legacy terms, with each stored value passed through ``bind``, and its route:
        what else, besides the types of the bound values, made this SQL (None: the SQL holds values inline)."""
        field, columns = self.field, self.field.columns
        codes = field.codec.code_map
        if self.op in _RANGE and not field.rangeable:
            raise QueryError(
                self.parameter,
                f"{field.name} cannot be compared with {self.op}: its stored values do not sort like its API values",
            )
        if codes is not None:
            self._check_names(codes)
            # The codes a name stands for are the mapping's: the SQL is one per value asked for.
            coded = coded_clause(field, codes, self.op, self.value)
            return coded, (None if self.op in ("like", "ilike") else ("coded", self.value))
        if self.op == "isnull":
            return self._null_clause(self.value), ("isnull", self.value)
        if self.op in ("like", "ilike"):
            return self._like_clause(), None
        single = len(columns) == 1
        route: Hashable | None
        if self.op == "in":
            encoded = [e for e in (self._encode(v, "eq") for v in self.value) if e is not _NOTHING]
            if not encoded:
                return sa.false(), ("nothing",)
            if not single:
                condition = sa.or_(*(stored_equals(field, e) for e in encoded))
                route = None
            else:
                text = any(isinstance(e, str) for e in encoded)
                condition = exact_in(columns[0], [bind(e) for e in encoded], padded=field.padded, text=text)
                route = ("in", text)
        else:
            op: str
            op, value = self.op, self.value
            places = field.codec.places
            if places is not None and isinstance(value, Decimal):
                # price[gt]=1.234 on a 2-place field means price >= 1.24: answered, not refused.
                restated = on_grid(value, places, op)
                if isinstance(restated, bool):
                    return (self._null_clause(False) if restated else sa.false()), ("grid", restated)
                op, value = restated
            encoded_value = self._encode(value, op)
            if encoded_value is _NOTHING:
                return sa.false(), ("nothing",)
            if not single:
                parts = encoded_value
                route = None
                if op == "eq":
                    condition = stored_equals(field, encoded_value)
                elif op == "ne":
                    condition = sa.or_(
                        *(exact_ne(c, p, padded=field.padded) for c, p in zip(columns, parts, strict=True))
                    )
                else:
                    condition = lexicographic(columns, tuple(parts), op, (False,) * len(columns))
            else:
                text = isinstance(encoded_value, str)
                bound = bind(encoded_value)
                route = (op, text)
                if op == "eq":
                    condition = exact_in(columns[0], [bound], padded=field.padded, text=text)
                elif op == "ne":
                    condition = sa.or_(exact_ne(columns[0], bound, padded=field.padded, text=text))
                else:
                    condition = lexicographic(columns, (bound,), op, (False,))
        # A sentinel is "no value" in the API, so it never equals, differs from or orders against a value.
        return (sa.and_(condition, self._null_clause(False)) if field.codec.sentinels else condition), route

    def _check_names(self, codes: CodeMap) -> None:
        """A value no row can be served as is a typo: say which values exist (``raw`` serves any code)."""
        numeric = all(isinstance(code, int) for code, _ in codes.pairs)
        if self.op in ("like", "ilike") and codes.unmapped == "raw" and numeric:
            # Engines turn numbers into text differently ('7', '7.0'): no pattern could mean one thing.
            raise QueryError(self.parameter, f"{self.op} cannot match {self.field.name}'s raw numeric codes")
        if self.op not in ("eq", "ne", "in") or codes.unmapped == "raw":
            return
        names = {name for _, name in codes.pairs} | ({codes.default} if codes.default is not None else set())
        for value in self.value if self.op == "in" else (self.value,):
            if value not in names:
                raise QueryError(self.parameter, f"{value!r} is not one of: {', '.join(sorted(names))}")

    def _encode(self, value: Any, op: str) -> Any:
        try:
            encoded = self.field.codec.to_legacy(value)
        except Unencodable as exc:
            if op == "eq" and self.field.codec.places is not None and isinstance(value, Decimal):
                return _NOTHING  # finer than the field's decimals: equal to no stored value
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
        if not field.matchable:
            raise QueryError(self.parameter, f"{self.op} applies to text fields; {field.name} is not plain text")
        pattern: LikePattern = self.value
        column: sa.ColumnElement[Any] = field.columns[0]
        # CHAR columns hold trailing pad spaces: a pattern ending in * absorbs them and keeps
        # the index usable; any other pattern must compare against the trimmed value.
        if field.spec.transform == "trim" and not pattern.ends_with_star:
            column = sa.func.rtrim(column)
        elif field.spec.transform == "strip":
            column = sa.func.ltrim(sa.func.rtrim(column))
        condition: sa.ColumnElement[bool] = PatternMatch(column, pattern)
        return sa.and_(condition, self._null_clause(False)) if field.codec.sentinels else condition


_NOTHING = object()
"""An encoded filter value no stored value can equal."""


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
    text: tuple[bool | None, ...] = ()
    """Per link: ``True`` text whose trailing spaces do not count, ``False`` text whose spaces do,
    ``None`` not text. Text links compare code point by code point (``exact_in``)."""

    def append_to(self, select: sa.Select[Any]) -> sa.Select[Any]:
        return select.where(self.clause())

    def clause(self) -> sa.ColumnElement[bool]:
        return self._exists([c.clause() for c in self.conditions])

    @property
    def shape(self) -> Hashable | None:
        """What the SQL depends on besides ``values`` (``Comparison.shape``): the links, the related
        table's ``where`` and the one condition's shape. None (built per read) for anything else."""
        if len(self.conditions) != 1 or not isinstance(self.where, MappingCondition | None):
            return None
        inner = getattr(self.conditions[0], "shape", None)
        links = tuple((_column_key(outer), _column_key(related)) for outer, related in self.links)
        if inner is None or any(None in link for link in links):
            return None
        return ("related", links, self.text, None if self.where is None else self.where.sql, inner)

    @property
    def values(self) -> tuple[Any, ...]:
        """The stored values ``template`` binds: its condition's."""
        return tuple(self.conditions[0].values)

    def template(self, prefix: str) -> sa.ColumnElement[bool]:
        """``clause()`` with its condition's values as bind parameters ``{prefix}0``, …: the same SQL."""
        return self._exists([self.conditions[0].template(prefix)])

    def _exists(self, conditions: list[sa.ColumnElement[bool]]) -> sa.ColumnElement[bool]:
        kinds = self.text or (None,) * len(self.links)
        inner = [
            outer == related if padded is None else exact_in(outer, [related], padded=padded, text=True)
            for (outer, related), padded in zip(self.links, kinds, strict=True)
        ]
        inner.extend(conditions)
        if self.where is not None:
            inner.append(self.where)
        return sa.exists().where(*inner)


def _column_key(column: sa.ColumnElement[Any]) -> tuple[str, str] | None:
    """A table column as a shape holds it (its table's and its own name), None for any other expression."""
    table = getattr(column, "table", None)
    name = getattr(column, "name", None)
    return (table.fullname, name) if isinstance(table, sa.Table) and isinstance(name, str) else None
