"""Text compared code point by code point on every engine, and integer division that truncates on every engine.

MariaDB's and SQL Server's default collations are case-insensitive: ``JSTAT IN ('R')``
also matches a stored ``'r'``, which the API serves as an unknown code, so a filter or
a group on codes would mean something else there than on SQLite and PostgreSQL. Trailing
pad spaces are still ignored (PAD SPACE), as CHAR columns need. ``IntDiv`` is ``x DIV n``
written the way each engine truncates (PostgreSQL rounds a cast NUMERIC, MariaDB's ``/``
gives a decimal).

Every comparison of a key, a claim or a filter value with a text column goes through
``exact_in`` / ``exact_ne`` (equality; ``stored_equals`` for a field's stored value), ``exact_after`` (a
keyset cursor's ``>``/``<``), ``exact_order`` (the ORDER BY term a cursor follows) and
``exact_value`` (a ``GROUP BY`` that counts case variants apart). ``padded`` says whether trailing
spaces count: a ``trim``/``strip`` field serves ``'C0042   '`` as ``"C0042"``, so there they
do not (PAD SPACE, as CHAR needs); a plain text field serves ``'C0042 '`` as is, so there
``'C0042'`` must not match it (``utf8mb4_nopad_bin``; SQL Server, whose ``=`` always ignores
trailing spaces, compares ``value + '.'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from legacy_adapters.query.like import MSSQL_COLLATION, MSSQL_COLLATION_BEFORE_2019

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField

__all__ = (
    "CaseExact",
    "IntDiv",
    "exact_after",
    "exact_in",
    "exact_ne",
    "exact_order",
    "exact_value",
    "ignores_case",
    "stored_equals",
)


class CaseExact(sa.sql.expression.ColumnElement[Any]):
    """``expression`` under a binary (case- and accent-sensitive) collation."""

    inherit_cache = True

    def __init__(self, expression: sa.ColumnElement[Any]) -> None:
        self.operand = expression
        self.type = expression.type

    _traverse_internals = [("operand", sa.sql.visitors.InternalTraversal.dp_clauseelement)]


@compiles(CaseExact)
def _plain(element: CaseExact, compiler: Any, **kw: Any) -> str:
    # SQLite's BINARY and PostgreSQL's deterministic collations already compare code points.
    return str(compiler.process(element.operand, **kw))


@compiles(CaseExact, "mysql")
@compiles(CaseExact, "mariadb")
def _mariadb(element: CaseExact, compiler: Any, **kw: Any) -> str:
    # CONVERT first: COLLATE utf8mb4_bin is refused on a latin1 column.
    return f"CONVERT({compiler.process(element.operand, **kw)} USING utf8mb4) COLLATE utf8mb4_bin"


@compiles(CaseExact, "mssql")
def _mssql(element: CaseExact, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.operand, **kw)} COLLATE {_mssql_collation(compiler)}"


_INSENSITIVE = ("mysql", "mariadb", "mssql")


def ignores_case(dialect: sa.Dialect) -> bool:
    """The dialect's default collations compare text case-insensitively (MariaDB, SQL Server)."""
    return dialect.name in _INSENSITIVE


"""Dialects whose default collations ignore case (and accents): plain ``=`` and ``>`` are not exact there."""


def _mssql_collation(compiler: Any) -> str:
    version = getattr(compiler.dialect, "server_version_info", None)
    return MSSQL_COLLATION_BEFORE_2019 if version and version[0] < 15 else MSSQL_COLLATION


def _exact_operand(compiler: Any, sql: str, padded: bool) -> str:
    """``sql`` (a column) as compared code point by code point on a case-insensitive dialect."""
    if compiler.dialect.name == "mssql":
        collation = _mssql_collation(compiler)
        return f"{sql} COLLATE {collation}" if padded else f"({sql} + N'.') COLLATE {collation}"
    return f"CONVERT({sql} USING utf8mb4) COLLATE {'utf8mb4_bin' if padded else 'utf8mb4_nopad_bin'}"


def _exact_value(compiler: Any, sql: str, padded: bool) -> str:
    """The other side of that comparison: SQL Server's ``=`` ignores trailing spaces, ``value + '.'`` keeps them."""
    return f"({sql} + N'.')" if compiler.dialect.name == "mssql" and not padded else sql


class _ExactCompare(sa.sql.expression.ColumnElement[bool]):
    """``column op value`` (or ``column IN (values)``) under a binary collation; only rendered where one is needed."""

    inherit_cache = True
    type = sa.Boolean()
    _is_implicitly_boolean = True

    def __init__(self, column: sa.ColumnElement[Any], op: str, values: list[Any], padded: bool) -> None:
        self.column = column
        self.operator_sql = op
        self.values = sa.sql.expression.ClauseList(*(_bind(v) for v in values))
        self.padded = padded

    _traverse_internals = [
        ("column", sa.sql.visitors.InternalTraversal.dp_clauseelement),
        ("operator_sql", sa.sql.visitors.InternalTraversal.dp_string),
        ("values", sa.sql.visitors.InternalTraversal.dp_clauseelement),
        ("padded", sa.sql.visitors.InternalTraversal.dp_boolean),
    ]

    @property
    def _from_objects(self) -> list[Any]:  # the tables it reads: an EXISTS around it must name them
        return [*self.column._from_objects, *self.values._from_objects]


def _bind(value: Any) -> sa.ColumnElement[Any]:
    return value if isinstance(value, sa.ColumnElement) else sa.literal(value)


@compiles(_ExactCompare)
def _exact_compare(element: _ExactCompare, compiler: Any, **kw: Any) -> str:
    left = compiler.process(element.column, **kw)
    if compiler.dialect.name in _INSENSITIVE:
        left = _exact_operand(compiler, left, element.padded)
    values = [compiler.process(v, **kw) for v in element.values.clauses]
    if compiler.dialect.name in _INSENSITIVE:
        values = [_exact_value(compiler, v, element.padded) for v in values]
    if element.operator_sql == "in":
        return f"{left} IN ({', '.join(values)})"
    return f"{left} {element.operator_sql} {values[0]}"


class _PerCollation(sa.sql.expression.ColumnElement[bool]):
    """``plain`` where the collation compares code points (SQLite, PostgreSQL), ``insensitive`` where it does not."""

    inherit_cache = True
    type = sa.Boolean()
    _is_implicitly_boolean = True  # a predicate: never written ``(...) = 1`` where booleans are not native

    def __init__(self, plain: sa.ColumnElement[bool], insensitive: sa.ColumnElement[bool]) -> None:
        self.plain = plain
        self.insensitive = insensitive

    _traverse_internals = [
        ("plain", sa.sql.visitors.InternalTraversal.dp_clauseelement),
        ("insensitive", sa.sql.visitors.InternalTraversal.dp_clauseelement),
    ]

    @property
    def _from_objects(self) -> list[Any]:
        return [*self.plain._from_objects, *self.insensitive._from_objects]


@compiles(_PerCollation)
def _per_collation(element: _PerCollation, compiler: Any, **kw: Any) -> str:
    chosen = element.insensitive if compiler.dialect.name in _INSENSITIVE else element.plain
    return f"({compiler.process(chosen, **kw)})"


def _is_text(values: list[Any], text: bool | None) -> bool:
    return text if text is not None else any(isinstance(v, str) for v in values)


def exact_in(
    column: sa.ColumnElement[Any], values: list[Any], *, padded: bool = True, text: bool | None = None
) -> sa.ColumnElement[bool]:
    """``column IN values``, text compared code point by code point on every engine.

    A row filter's ``customer_id = 'c0042'`` must not match ``'C0042'`` on MariaDB or SQL
    Server, nor ``GET /v1/customers/c0042`` answer C0042. Where the collation ignores case the
    plain comparison stays (an index narrows by it) and the exact one sifts what it found, so
    each value is bound twice there. ``text`` says the values are text when they are bind
    parameters (a prepared statement's); ``padded``: see the module's notes.
    """
    plain = column.in_(values) if len(values) > 1 else column == values[0]
    if not _is_text(values, text):
        return plain
    exact = _ExactCompare(column, "in" if len(values) > 1 else "=", values, padded)
    return _PerCollation(plain, sa.and_(plain, exact))


def exact_ne(
    column: sa.ColumnElement[Any], value: Any, *, padded: bool = True, text: bool | None = None
) -> sa.ColumnElement[bool]:
    """``column <> value``, text compared code point by code point on every engine."""
    plain = column != value
    return _PerCollation(plain, _ExactCompare(column, "<>", [value], padded)) if _is_text([value], text) else plain


def exact_after(
    column: sa.ColumnElement[Any], value: Any, *, descending: bool, padded: bool = True, text: bool | None = None
) -> sa.ColumnElement[bool]:
    """Rows whose ``column`` comes after ``value`` in ``exact_order``'s order (a keyset cursor on a key).

    Where the collation ignores case, ``'c0042'`` and ``'C0042'`` tie under a plain ``>``:
    a page ending on one would skip the other. There the order breaks such ties by the
    binary form, and so does this: ``col > v OR (col = v AND binary(col) > v)``. ``text``
    says the value is text when it is a bind parameter (a prepared page's).
    """
    op = "<" if descending else ">"
    plain: sa.ColumnElement[bool] = column < value if descending else column > value
    if not (text if text is not None else isinstance(value, str)):
        return plain
    tie = sa.and_(column == value, _ExactCompare(column, op, [value], padded))
    return _PerCollation(plain, sa.or_(plain, tie))


class _ExactOrder(sa.sql.expression.ColumnElement[Any]):
    """``column ASC|DESC``, then, where the collation ignores case, its binary form (ties broken)."""

    inherit_cache = True

    def __init__(self, column: sa.ColumnElement[Any], descending: bool, padded: bool) -> None:
        self.column = column
        self.descending = descending
        self.padded = padded
        self.type = column.type

    _traverse_internals = [
        ("column", sa.sql.visitors.InternalTraversal.dp_clauseelement),
        ("descending", sa.sql.visitors.InternalTraversal.dp_boolean),
        ("padded", sa.sql.visitors.InternalTraversal.dp_boolean),
    ]

    @property
    def _from_objects(self) -> list[Any]:
        return list(self.column._from_objects)


@compiles(_ExactOrder)
def _exact_order(element: _ExactOrder, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    direction = "DESC" if element.descending else "ASC"
    if compiler.dialect.name not in _INSENSITIVE:
        return f"{column} {direction}"
    return f"{column} {direction}, {_exact_operand(compiler, column, element.padded)} {direction}"


class _ExactValue(sa.sql.expression.ColumnElement[Any]):
    """``column`` as a value that groups code point by code point (``GROUP BY``), on every engine."""

    inherit_cache = True

    def __init__(self, column: sa.ColumnElement[Any], padded: bool) -> None:
        self.column = column
        self.padded = padded
        self.type = column.type

    _traverse_internals = [
        ("column", sa.sql.visitors.InternalTraversal.dp_clauseelement),
        ("padded", sa.sql.visitors.InternalTraversal.dp_boolean),
    ]

    @property
    def _from_objects(self) -> list[Any]:
        return list(self.column._from_objects)


@compiles(_ExactValue)
def _exact_value_sql(element: _ExactValue, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return _exact_operand(compiler, column, element.padded) if compiler.dialect.name in _INSENSITIVE else column


def exact_value(column: sa.ColumnElement[Any], *, padded: bool = True) -> sa.ColumnElement[Any]:
    """``column`` grouped code point by code point: ``GROUP BY`` it counts ``'c0042'`` and ``'C0042'`` apart."""
    return _ExactValue(column, padded)


def exact_order(column: sa.ColumnElement[Any], *, descending: bool, padded: bool = True) -> sa.ColumnElement[Any]:
    """The ORDER BY term of a text key column: a total order that ``exact_after`` follows on every engine."""
    return _ExactOrder(column, descending, padded)


def stored_equals(field: BoundField, stored: Any, *, text: bool | None = None) -> sa.ColumnElement[bool]:
    """``field``'s columns hold exactly ``stored`` (its codec's ``to_legacy`` of an API value, a tuple
    for a two-column field): the comparison every key, claim and relation lookup by value makes."""
    parts = stored if len(field.columns) > 1 else (stored,)
    terms = [exact_in(c, [p], padded=field.padded, text=text) for c, p in zip(field.columns, parts, strict=True)]
    return sa.and_(*terms) if len(terms) > 1 else terms[0]


class IntDiv(sa.sql.expression.ColumnElement[int]):
    """``expression DIV divisor`` for a non-negative whole ``expression`` and a constant divisor."""

    inherit_cache = True
    type = sa.BigInteger()

    def __init__(self, expression: sa.ColumnElement[Any], divisor: int) -> None:
        self.operand = expression
        self.divisor = divisor

    _traverse_internals = [
        ("operand", sa.sql.visitors.InternalTraversal.dp_clauseelement),
        ("divisor", sa.sql.visitors.InternalTraversal.dp_plain_obj),
    ]


@compiles(IntDiv)
def _div(element: IntDiv, compiler: Any, **kw: Any) -> str:
    # SQL Server and SQLite: an integer quotient of integers, a truncating cast of anything else.
    kind = "INTEGER" if compiler.dialect.name == "sqlite" else "BIGINT"
    return f"CAST(({compiler.process(element.operand, **kw)}) / {int(element.divisor)} AS {kind})"


@compiles(IntDiv, "postgresql")
def _div_postgresql(element: IntDiv, compiler: Any, **kw: Any) -> str:
    # CAST(numeric AS BIGINT) rounds in PostgreSQL; div() truncates.
    return f"CAST(div({compiler.process(element.operand, **kw)}, {int(element.divisor)}) AS BIGINT)"


@compiles(IntDiv, "mysql")
@compiles(IntDiv, "mariadb")
def _div_mariadb(element: IntDiv, compiler: Any, **kw: Any) -> str:
    return f"(({compiler.process(element.operand, **kw)}) DIV {int(element.divisor)})"
