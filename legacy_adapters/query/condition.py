"""The mapping's ``where``: author-written SQL whose ``{COLUMN}`` placeholders are quoted per engine.

Legacy names are upper case. SQL Server, MariaDB and SQLite match them unquoted,
but PostgreSQL folds ``DELFLG`` to ``delflg`` and misses a quoted upper-case
column; quoting by hand (``"DELFLG"``) is a string literal on MariaDB. So a
portable condition names columns in braces, ``{DELFLG} <> 'Y'``, and each
dialect's own quoting is applied when the statement is compiled.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

__all__ = ("MappingCondition",)

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_ $#@]*)\}")


class MappingCondition(sa.sql.expression.ColumnElement[bool]):
    """A SQL condition from the mapping file (trusted: written by whoever deploys the gateway)."""

    inherit_cache = True
    # NullType, not Boolean: engines without booleans (SQL Server) would otherwise append "= 1".
    type = sa.types.NullType()  # type: ignore[assignment]  # SQLAlchemy's stubs tie .type to the [bool] above
    _traverse_internals = [("sql", InternalTraversal.dp_string)]

    def __init__(self, sql: str) -> None:
        self.sql = sql


@compiles(MappingCondition)
def _compile(element: MappingCondition, compiler: SQLCompiler, **kw: Any) -> str:
    quoted = _PLACEHOLDER.sub(lambda m: compiler.preparer.quote(m.group(1)), element.sql)
    # Through text(): a ':' stays literal and '%' is escaped for drivers with pyformat parameters.
    return "(" + compiler.process(sa.text(quoted.replace(":", "\\:")), **kw) + ")"
