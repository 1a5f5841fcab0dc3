"""Action statements per engine: EXEC with named parameters on SQL Server, CALL elsewhere, all values bound."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.dialects import mssql, mysql, postgresql, sqlite

from legacy_adapters.actions import action_parameters, action_statements
from legacy_adapters.exceptions import QueryError
from legacy_adapters.mapping import Mapping
from legacy_adapters.mapping.model import ActionSpec
from legacy_adapters.query.resource import bind_version

MARKER = "J0001'; DROP TABLE JOBMAST;--"


def _compile(statement: Any, dialect: Any) -> tuple[str, dict[str, Any]]:
    compiled = statement.compile(dialect=dialect)
    return str(compiled), dict(compiled.params)


def test_procedure_is_exec_with_named_parameters_on_sql_server() -> None:
    action = ActionSpec(procedure="dbo.usp_ReleaseJob", params={"JobNo": "job_number", "Reason": "body.reason"})
    dialect = mssql.pyodbc.dialect(paramstyle="qmark")  # what a live pyodbc connection uses
    (statement,) = action_statements(action, {"JobNo": MARKER, "Reason": "customer asked"}, dialect)
    sql, params = _compile(statement, dialect)
    assert sql == "SET NOCOUNT ON; EXEC dbo.[usp_ReleaseJob] @JobNo = ?, @Reason = ?"
    assert list(params.values()) == [MARKER, "customer asked"]
    assert MARKER not in sql


def test_procedure_is_call_on_postgresql_and_mariadb() -> None:
    action = ActionSpec(procedure="release_job", params={"job_no": "job_number", "reason": "body.reason"})
    values = {"job_no": MARKER, "reason": "r"}
    (pg,) = action_statements(action, values, postgresql.psycopg.dialect())
    pg_sql, pg_params = _compile(pg, postgresql.psycopg.dialect())
    assert pg_sql.replace("::VARCHAR", "") == "CALL release_job(job_no => %(p0)s, reason => %(p1)s)"
    assert pg_params == {"p0": MARKER, "p1": "r"}
    (my,) = action_statements(action, values, mysql.pymysql.dialect())
    my_sql, my_params = _compile(my, mysql.pymysql.dialect())
    assert my_sql == "CALL release_job(%s, %s)"
    assert list(my_params.values()) == [MARKER, "r"]


def test_declared_statements_bind_only_the_parameters_they_use() -> None:
    action = ActionSpec(sql=["UPDATE T SET A = 1 WHERE K = :JobNo", "DELETE FROM U WHERE R = :Reason"], params={})
    first, second = action_statements(action, {"JobNo": MARKER, "Reason": "x"}, sqlite.dialect())
    assert _compile(first, sqlite.dialect())[1] == {"JobNo": MARKER}
    assert _compile(second, sqlite.dialect())[1] == {"Reason": "x"}


def test_parameters_are_encoded_from_the_row_and_the_body(demo_mapping: Mapping) -> None:
    jobs = bind_version(demo_mapping, "v1")["jobs"]
    action = ActionSpec(procedure="p", params={"JobNo": "job_number", "Due": "body.due_date", "Note": "body.note"})
    values = action_parameters(jobs, action, {"job_number": "J000123"}, {"due_date": "2026-12-01", "note": "n"})
    assert values == {"JobNo": "J000123   ", "Due": 20261201, "Note": "n"}  # CHAR padding, YYYYMMDD
    with pytest.raises(QueryError, match="needs 'note'"):
        action_parameters(jobs, action, {"job_number": "J000123"}, {"due_date": "2026-12-01"})
    with pytest.raises(QueryError, match="ISO 8601"):
        action_parameters(jobs, action, {"job_number": "J000123"}, {"due_date": "soon", "note": "n"})
