"""The T-SQL an aggregate becomes on SQL Server, checked without a server.

The request goes through the real path (query string -> ``parse_aggregate_params`` ->
``run_aggregate``) on the SQLite demo; the statement it ran is compiled for ``mssql+pyodbc``
as ``test_tsql.py`` does for lists.
"""

from __future__ import annotations

from typing import Any

from gateway.aggregates import parse_aggregate_params
from gateway.auth.guards import authorize_read
from gateway.auth.principal import Principal
from legacy_adapters.mapping import Mapping
from legacy_adapters.query.aggregate import run_aggregate
from legacy_adapters.query.resource import Resource
from tests.unit.legacy_adapters.test_tsql import ADMIN, PORTAL, Recording, sql_server, tsql

pytest_plugins = ["tests.unit.legacy_adapters.test_tsql"]


def aggregate_sql(
    recording: Recording, mapping: Mapping, resource: Resource, query: str, principal: Principal = ADMIN, **kw: Any
) -> tuple[str, list[Any], list[dict[str, Any]]]:
    access = authorize_read(resource, principal)
    items = [tuple(p.split("=", 1)) for p in query.split("&")]
    params = parse_aggregate_params(items, resource, access, mapping.api)  # type: ignore[arg-type]
    page = run_aggregate(recording, params.query(resource, access))  # type: ignore[arg-type]
    text, values = tsql(recording.statements[-1], sql_server(**kw))
    return text, values, page.groups


def test_grouped_totals_compile_for_sql_server(
    recording: Recording, demo_mapping: Mapping, resources: dict[str, Resource]
) -> None:
    query = (
        "group_by=status,due_date:month&sum=quantity&avg=quantity&min=due_date"
        "&having.count[gt]=1&sort=-avg.quantity&limit=20"
    )
    text, values, groups = aggregate_sql(recording, demo_mapping, resources["jobs"], query)
    assert groups, "the same statement ran on SQLite and found groups"
    assert text.startswith("SELECT TOP 21 ")
    # Codes compared by code point: SQL Server's default collation would take 'r' for 'R'.
    assert "WHEN ([JOBMAST].[JSTAT] COLLATE Latin1_General_100_BIN2_UTF8 IN (?)) THEN ?" in text
    # Dates taken apart with integer arithmetic: the year of YYYYMMDD and its validity (no 20230231).
    assert "CAST(([JOBMAST].[DUEDT]) / 10000 AS BIGINT)" in text
    assert "([JOBMAST].[DUEDT] NOT IN (?, ?))" in text and 99999999 in values
    assert "FROM [JOBMAST] WHERE ([DELFLG] <> 'Y')) AS r GROUP BY r.g0, r.g1) AS g WHERE g.n > ?" in text
    assert "ORDER BY CASE WHEN (g.c2 > ?) THEN (g.a2 * 1.0) / (g.c2 + 0.0) ELSE NULL END DESC, g.g0 ASC" in text
    assert values[-2:] == [1, 0]  # having.count[gt]=1, then the average's count > 0


def test_portal_rows_and_sql_server_2008(
    recording: Recording, demo_mapping: Mapping, resources: dict[str, Resource]
) -> None:
    text, values, _ = aggregate_sql(
        recording, demo_mapping, resources["jobs"], "group_by=rush&limit=5", PORTAL, version=(10, 50, 6000)
    )
    assert text.startswith("SELECT TOP 6 ")
    # The row filter narrows by the index, then compares code point by code point (2008: no UTF-8 collation).
    exact = "([JOBMAST].[CUSTNO] = ? AND [JOBMAST].[CUSTNO] COLLATE Latin1_General_100_BIN2 = ?)"
    assert exact in text and "C0042   " in values
