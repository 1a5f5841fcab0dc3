"""Mapped actions: a stored procedure (or, where the engine has none, a declared statement) with bound parameters.

``params`` names where each procedure parameter comes from: a field of the
addressed row (``job_number``) or of the request body (``body.reason``). Values
are encoded for storage by the field's codec; body values without a field are
bound as given. The statement differs per engine: ``EXEC`` with named
parameters on SQL Server, ``CALL`` on PostgreSQL and MariaDB.

Declared ``sql`` may name tables and columns in braces, ``UPDATE {JOBMAST} SET
{JSTAT} = 'R'``, quoted per engine like the mapping's ``where``: PostgreSQL folds a
bare ``JOBMAST`` to ``jobmast`` and misses the upper-case table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as AbcMapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from legacy_adapters.exceptions import QueryError
from legacy_adapters.query.resource import split_table_name
from legacy_adapters.query.values import coerce_json, coerce_unmapped
from legacy_adapters.transforms import Unencodable

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import ActionSpec
    from legacy_adapters.query.resource import Resource

__all__ = ("action_parameters", "action_statements", "run_action")

BODY_PREFIX = "body."
_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_ $#@]*)\}")
"""``{JOBMAST}``: a table or column name, the same form as in the mapping's ``where``."""


def action_parameters(
    resource: Resource, action: ActionSpec, row: AbcMapping[str, Any], body: AbcMapping[str, Any]
) -> dict[str, Any]:
    """Stored-form values for each procedure parameter; ``QueryError`` naming the missing or bad one."""
    values: dict[str, Any] = {}
    for param, source in action.params.items():
        if source.startswith(BODY_PREFIX):
            name = source.removeprefix(BODY_PREFIX)
            if name not in body:
                raise QueryError(name, f"the action needs {name!r} in the request body")
            value = body[name]
            field = resource.fields.get(name)
            if field is not None:
                try:
                    value = field.codec.to_legacy(
                        coerce_json(field.spec.type, value, field.bounds, as_string=field.spec.as_string)
                    )
                except (ValueError, Unencodable) as exc:
                    raise QueryError(name, str(exc)) from None
            else:
                try:  # no field to say more: still no NUL, no absurd number, no nested JSON
                    value = coerce_unmapped(value)
                except ValueError as exc:
                    raise QueryError(name, str(exc)) from None
            values[param] = value
        else:
            field = resource.fields[source]
            values[param] = field.codec.to_legacy(row[source])
    return values


def action_statements(action: ActionSpec, params: AbcMapping[str, Any], dialect: sa.Dialect) -> list[sa.TextClause]:
    """The statements that run ``action`` on ``dialect``, every value a bound parameter."""
    if action.sql is not None:
        statements = [action.sql] if isinstance(action.sql, str) else action.sql
        quote = dialect.identifier_preparer.quote
        return [_bind(sa.text(_NAME.sub(lambda m: quote(m.group(1)), sql)), params) for sql in statements]
    return [_procedure_call(action, params, dialect)]


def _bind(statement: sa.TextClause, params: AbcMapping[str, Any]) -> sa.TextClause:
    used = {name: value for name, value in params.items() if f":{name}" in statement.text}
    return statement.bindparams(**used)


def _procedure_call(action: ActionSpec, params: AbcMapping[str, Any], dialect: sa.Dialect) -> sa.TextClause:
    assert action.procedure is not None
    schema, name = split_table_name(action.procedure)
    quote = dialect.identifier_preparer.quote
    procedure = f"{quote(schema)}.{quote(name)}" if schema else quote(name)
    binds = {f"p{i}": value for i, value in enumerate(params.values())}
    placeholders = [f":p{i}" for i in range(len(params))]
    if dialect.name == "mssql":
        # NOCOUNT: row counts before the result set would make pyodbc report "no results".
        named = ", ".join(f"@{p} = {ph}" for p, ph in zip(params, placeholders, strict=True))
        sql = f"SET NOCOUNT ON; EXEC {procedure} {named}"
    elif dialect.name == "postgresql":
        named = ", ".join(f"{quote(p)} => {ph}" for p, ph in zip(params, placeholders, strict=True))
        sql = f"CALL {procedure}({named})"
    else:  # MariaDB/MySQL: positional, in the order the mapping lists them
        sql = f"CALL {procedure}({', '.join(placeholders)})"
    return sa.text(sql).bindparams(**binds)


def run_action(conn: sa.Connection, statements: list[sa.TextClause]) -> dict[str, Any]:
    """Execute in the caller's transaction: the last result set comes back as rows, else rows affected."""
    outcome: dict[str, Any] = {"affected": 0}
    for statement in statements:
        result = conn.execute(statement)
        if result.returns_rows:
            outcome = {"rows": [dict(row._mapping) for row in result]}
        else:
            outcome["affected"] = outcome.get("affected", 0) + max(result.rowcount, 0)
    return outcome
