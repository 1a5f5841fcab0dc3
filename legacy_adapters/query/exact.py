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

__all__ = ("CaseExact", "IntDiv")


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
