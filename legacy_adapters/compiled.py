"""SQL text compiled once per statement shape, and the positional parameters the driver takes.

Reads run on the pooled DB-API connection's own cursor (``Database.fetch_rows``):
SQLAlchemy's execution context, result and ``Row`` objects cost more than a keyed
read's query. What that execute path did with a compiled statement is done here,
once per shape where it can be: the SQL text, the order of its positional
parameters, the type processors of bound values, and the expansion of ``IN`` lists
(and SQL Server's ``TOP``) that are rendered per execution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

    from legacy_adapters.query.plan_cache import PlanCache

__all__ = ("Prepared", "StatementCache")

Bound = tuple[str, "Sequence[Any] | dict[str, Any]"]
"""SQL text and its parameters, as the driver's ``cursor.execute`` takes them."""


class Prepared:
    """A statement compiled once for one engine and run with fresh values each time.

    Building and compiling a Core statement per request costs more than the query
    itself on a keyed read; the shape of a get-by-key never changes, only its values.
    ``parameters`` takes values for the statement's named bind parameters (the
    others keep the values they were compiled with).
    """

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect, cache_key: Any = None) -> None:
        compiled: Any = statement.compile(dialect=dialect, cache_key=cache_key)  # an SQLCompiler: its private
        # parameter helpers below are those SQLAlchemy's own execute path calls
        self.statement = statement
        self.compiled = compiled
        self.sql = compiled.string
        self._positions: Sequence[str] | None = compiled.positiontup
        self._defaults: dict[str, Any] = compiled.construct_params(escape_names=False, _no_postcompile=True)
        self._processors: Mapping[str, Callable[[Any], Any]] = compiled._bind_processors
        # IN lists and literal-execute values (SQL Server's TOP) are written into the text per execution.
        self._expands = bool(compiled.post_compile_params or compiled.literal_execute_params)
        self._plain = not self._expands and not any(p in self._processors for p in self._positions or ())
        self.raw_rows = _needs_no_result_processing(compiled, dialect)
        """The driver's rows are the rows (no result type converts values, e.g. SQLite's text dates)."""

    @property
    def names(self) -> frozenset[str]:
        """The statement's bind parameter names (SQLAlchemy's anonymous ones as rendered, ``param_1``)."""
        return frozenset(self.compiled.binds)

    def parameters(self, values: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The driver's parameters with ``values`` for the named ones (this text's, never expanding)."""
        merged = {**self._defaults, **values}
        if self._plain and self._positions is not None:
            return tuple(merged[name] for name in self._positions)
        return self._bind(merged)[1]

    def bind(self, values: dict[str, Any] | None = None) -> Bound:
        """SQL text and parameters for one execution: ``values`` over the compiled ones."""
        merged = {**self._defaults, **values} if values else self._defaults
        if self._plain and self._positions is not None:
            return self.sql, tuple(merged[name] for name in self._positions)
        return self._bind(merged)

    def bind_extracted(self, extracted: Sequence[Any]) -> Bound:
        """SQL text and parameters for a statement of the same cache key as the compiled one
        (``extracted``: that statement's bind parameters, in its cache key's order)."""
        merged: dict[str, Any] = self.compiled.construct_params(
            extracted_parameters=extracted, escape_names=False, _no_postcompile=True
        )
        if self._plain and self._positions is not None:
            return self.sql, tuple(merged[name] for name in self._positions)
        return self._bind(merged)

    def _bind(self, merged: dict[str, Any]) -> Bound:
        sql, positions, processors = self.sql, self._positions, self._processors
        if self._expands:
            # A copy: SQLAlchemy pops the expanded names from the dict it is given.
            expanded = self.compiled._process_parameters_for_postcompile(dict(merged))
            sql, positions, merged = expanded.statement, expanded.positiontup, dict(expanded.parameters)
            processors = {**processors, **expanded.processors}
        if positions is None:  # a named paramstyle (no pyodbc or sqlite3 dialect has one)
            return sql, {k: processors[k](v) if k in processors else v for k, v in merged.items()}
        return sql, tuple(processors[k](merged[k]) if k in processors else merged[k] for k in positions)


def _needs_no_result_processing(compiled: Any, dialect: sa.Dialect) -> bool:
    """No result column has a type SQLAlchemy's result would convert: the resources' columns are untyped.

    A typed column (a migration twin's ``Date`` on SQLite, a ``Numeric`` whose conversion depends
    on the driver's column type) keeps SQLAlchemy's result, which converts it.
    """
    import sqlalchemy as sa  # here: at runtime only when a statement is compiled

    for entry in compiled._result_columns or ():
        kind = entry.type
        if isinstance(kind, sa.types.NullType):
            continue
        if isinstance(kind, sa.Numeric) or kind._cached_result_processor(dialect, None) is not None:
            return False
    return True


class StatementCache:
    """Compiled statements by SQLAlchemy cache key: a Core statement built per call, compiled once per shape.

    The same lookup SQLAlchemy's own execute does (its compiled cache), without the
    execution context and result objects around it.
    """

    def __init__(self, dialect: sa.Dialect, size: int = 500) -> None:
        from legacy_adapters.query.plan_cache import PlanCache  # here: legacy_adapters.query imports the database

        self.dialect = dialect
        self._plans: PlanCache[Prepared] = PlanCache(size)

    def bind(self, statement: sa.ClauseElement) -> Bound | None:
        """SQL text and parameters of ``statement``; None when its rows need SQLAlchemy's result types."""
        key = statement._generate_cache_key()
        if key is None:  # an element that cannot be cached: compiled every time, as SQLAlchemy does
            prepared = Prepared(statement, self.dialect)
            return prepared.bind() if prepared.raw_rows else None
        prepared = self._plans.get(key.key, lambda: Prepared(statement, self.dialect, cache_key=key))
        return prepared.bind_extracted(key.bindparams) if prepared.raw_rows else None
