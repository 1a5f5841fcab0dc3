"""Every bad input is a 4xx problem+json naming the parameter: never a 500, never SQL text."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

PROBLEM = "application/problem+json"
SQL_WORDS = ("SELECT", "JOBMAST", "JSTAT", "DUEDT", "WHERE", "Traceback", "sqlite")


def assert_problem(response: Any, status: int, parameter: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
    assert not any(word in response.text for word in SQL_WORDS), response.text
    if parameter is not None:
        assert parameter in [e["parameter"] for e in body["errors"]], body
    return body


@pytest.mark.parametrize(
    ("query", "parameter", "phrase"),
    [
        ("colour=red", "colour", "unknown field 'colour'"),
        ("due_date[between]=2026-01-01", "due_date[between]", "unknown operator 'between'"),
        ("due_date[lt]=2026-13-01", "due_date[lt]", "ISO 8601 date"),
        ("due_date=yesterday", "due_date", "ISO 8601 date"),
        ("rush=maybe", "rush", "true or false"),
        ("quantity[gt]=lots", "quantity[gt]", "decimal"),
        ("status=cancelled", "status", "released"),
        ("status[lt]=released", "status[lt]", "cannot be compared"),
        ("due_date[isnull]=perhaps", "due_date[isnull]", "true or false"),
        ("rush[like]=Y*", "rush[like]", "text fields"),
        ("limit=501", "limit", "between 1 and 500"),
        ("limit=0", "limit", "between 1 and 500"),
        ("limit=ten", "limit", "whole number"),
        ("offset=-1", "offset", "at least 0"),
        ("sort=colour", "sort", "unknown field 'colour'"),
        ("sort=status", "sort", "cannot be sorted"),
        ("fields=job_number,colour", "fields", "unknown field 'colour'"),
        ("embed=invoices", "embed", "unknown relation 'invoices'"),
        ("count=maybe", "count", "exact"),
        ("status=released&status=on_hold", "status", "more than once"),
        ("cursor=abc&offset=10", "offset", "either cursor or offset"),
        ("cursor=not-a-cursor", "cursor", "cursor is not valid"),
        ("job_number[in]=" + ",".join(f"J{i}" for i in range(501)), "job_number[in]", "at most 500"),
    ],
)
def test_bad_parameter_is_400_naming_it(
    client: TestClient[Any], admin: dict[str, str], query: str, parameter: str, phrase: str
) -> None:
    body = assert_problem(client.get(f"/v1/jobs?{query}", headers=admin), 400, parameter)
    details = " ".join(e["detail"] for e in body["errors"] if e["parameter"] == parameter)
    assert phrase in details


def test_all_bad_parameters_are_reported_at_once(client: TestClient[Any], admin: dict[str, str]) -> None:
    body = assert_problem(client.get("/v1/jobs?colour=red&limit=9999&due_date=soon", headers=admin), 400)
    assert {e["parameter"] for e in body["errors"]} == {"colour", "limit", "due_date"}


def test_forged_cursor_is_refused(client: TestClient[Any], admin: dict[str, str]) -> None:
    first = client.get("/v1/jobs?limit=2&sort=due_date", headers=admin).json()
    cursor = first["next_cursor"]
    forged = cursor[:-3] + ("AAA" if cursor[-3:] != "AAA" else "BBB")
    assert_problem(client.get(f"/v1/jobs?limit=2&sort=due_date&cursor={forged}", headers=admin), 400, "cursor")
    # A genuine cursor replayed on another query (the sort changed) is refused too, not misapplied.
    body = assert_problem(client.get(f"/v1/jobs?limit=2&sort=-due_date&cursor={cursor}", headers=admin), 400)
    assert "different query" in body["detail"]


def test_unknown_resource_version_and_key(client: TestClient[Any], admin: dict[str, str]) -> None:
    assert_problem(client.get("/v1/invoices", headers=admin), 404)
    assert_problem(client.get("/v9/jobs", headers=admin), 404)
    assert_problem(client.get("/v1/jobs/J999999", headers=admin), 404)
    assert_problem(client.get("/v1/jobs/" + "J" * 40, headers=admin), 404)  # longer than CHAR(10): no such row
    assert_problem(client.get("/v1/operations/J000001,first", headers=admin), 400, "key")


def test_method_not_allowed_is_a_problem(client: TestClient[Any], admin: dict[str, str]) -> None:
    assert_problem(client.delete("/v1/items", headers=admin), 405)


def test_unacceptable_media_type_is_406(client: TestClient[Any], admin: dict[str, str]) -> None:
    assert_problem(client.get("/v1/jobs", headers={**admin, "Accept": "application/xml"}), 406)


def test_problem_type_is_documented(client: TestClient[Any]) -> None:
    body = assert_problem(client.get("/v1/jobs?limit=0", headers={}), 401)
    page = client.get(body["type"])
    assert page.status_code == 200 and "token" in page.text
