"""Text compared code point by code point on every engine, and integer division that truncates on every engine.

MariaDB's and SQL Server's default collations are case-insensitive: ``JSTAT IN ('R')``
also matches a stored ``'r'``, which the API serves as an unknown code, so a filter or
a group on codes would mean something else there than on SQLite and PostgreSQL. Trailing
pad spaces are still ignored (PAD SPACE), as CHAR columns need. ``IntDiv`` is ``x DIV n``
written the way each engine truncates (PostgreSQL rounds a cast NUMERIC, MariaDB's ``/``
gives a decimal).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from legacy_adapters.query.like import MSSQL_COLLATION, MSSQL_COLLATION_BEFORE_2019

__all__ = ("CaseExact", "IntDiv", "exact_in", "exact_ne")


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
    version = getattr(compiler.dialect, "server_version_info", None)
    collation = MSSQL_COLLATION_BEFORE_2019 if version and version[0] < 15 else MSSQL_COLLATION
    return f"{compiler.process(element.operand, **kw)} COLLATE {collation}"


class _Narrowed(sa.sql.expression.ColumnElement[bool]):
    """``plain AND exact`` where the collation is case-insensitive, ``plain`` where it is not.

    ``plain`` (``col IN (...)``) can use an index on the column; ``exact`` (the same under a
    binary collation) cannot, so it only sifts the rows ``plain`` found.
    """

    inherit_cache = True
    type = sa.Boolean()
    _is_implicitly_boolean = True  # a predicate: never written ``(...) = 1`` where booleans are not native

    def __init__(self, plain: sa.ColumnElement[bool], exact: sa.ColumnElement[bool]) -> None:
        self.plain = plain
        self.exact = exact

    _traverse_internals = [
        ("plain", sa.sql.visitors.InternalTraversal.dp_clauseelement),
        ("exact", sa.sql.visitors.InternalTraversal.dp_clauseelement),
    ]


@compiles(_Narrowed)
def _narrowed_plain(element: _Narrowed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.plain, **kw))


@compiles(_Narrowed, "mysql")
@compiles(_Narrowed, "mariadb")
@compiles(_Narrowed, "mssql")
def _narrowed_exact(element: _Narrowed, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.plain, **kw)} AND {compiler.process(element.exact, **kw)})"


def exact_in(column: sa.ColumnElement[Any], values: list[Any]) -> sa.ColumnElement[bool]:
    """``column IN values``, text compared code point by code point on every engine (a row filter's
    ``customer_id = 'c0042'`` must not match ``'C0042'`` on MariaDB or SQL Server)."""
    if not any(isinstance(v, str) for v in values):
        return column.in_(values) if len(values) > 1 else column == values[0]
    plain = column.in_(values) if len(values) > 1 else column == values[0]
    exact = CaseExact(column).in_(values) if len(values) > 1 else CaseExact(column) == values[0]
    return _Narrowed(plain, exact)


def exact_ne(column: sa.ColumnElement[Any], value: Any) -> sa.ColumnElement[bool]:
    """``column <> value``, text compared code point by code point on every engine."""
    return CaseExact(column) != value if isinstance(value, str) else column != value


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
