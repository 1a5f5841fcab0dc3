"""Every bad input is a 4xx problem+json naming the parameter: never a 500, never SQL text."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import TestClient

from gateway import create_app
from gateway.problems import MAX_LISTED_ERRORS

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
        ("offset=-1", "offset", "between 0 and"),
        ("offset=99999999999999999999", "offset", "between 0 and"),
        ("offset=" + "9" * 60_000, "offset", "whole number"),
        ("quantity[gt]=1e30", "quantity[gt]", "out of range"),
        ("quantity=1e400000", "quantity", "out of range"),
        ("quantity=-1e400000", "quantity", "out of range"),
        ("quantity[gt]=1e-400000", "quantity[gt]", "out of range"),
        ("quantity[in]=" + ",".join(["1e300000"] * 50), "quantity[in]", "out of range"),
        ("quantity=NaN", "quantity", "decimal"),
        ("quantity=Infinity", "quantity", "decimal"),
        ("quantity=" + "9" * 5000, "quantity", "decimal"),
        ("notes[like]=" + "a" * 60_000, "notes[like]", "too long"),
        ("job_number=J%00001", "job_number", "NUL"),
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


def test_huge_numbers_are_refused_before_any_arithmetic(client: TestClient[Any], admin: dict[str, str]) -> None:
    """``1e400000`` once held the GIL for 10 s (scaled and made an int before any bound check)."""
    started = time.monotonic()
    assert_problem(client.get("/v1/items?price=1e400000"), 400, "price")
    assert_problem(client.get("/v1/items?price[in]=" + ",".join(["1e300000"] * 400)), 400, "price[in]")
    body = {"job_number": "JX1", "quantity": Decimal("1e999999")}
    response = client.post("/v1/jobs", content=f'{{"quantity": 1e999999, "job_number": "{body["job_number"]}"}}',
                           headers={**admin, "content-type": "application/json"})  # fmt: skip
    problem = assert_problem(response, 422)
    assert any(e["field"] == "quantity" and "out of range" in e["detail"] for e in problem["errors"])
    assert time.monotonic() - started < 5, "a huge number must be refused in O(1), not expanded"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/operations/J000001,99999999999999999999",
        "/v1/operations/J000001,-99999999999999999999",
        "/v1/operations/J000001,1e400000",
        "/admin/audit?cursor=99999999999999999999",
        "/admin/audit?cursor=0",
        "/admin/audit?since=garbage",
        "/admin/audit?until=2026-13-45",
        "/admin/audit?limit=" + "9" * 50_000,
        "/admin/audit?key=a%00b",
    ],
)
def test_out_of_range_path_and_admin_values_are_400(client: TestClient[Any], admin: dict[str, str], path: str) -> None:
    body = assert_problem(client.get(path, headers=admin), 400)
    assert body["errors"]


def test_audit_since_accepts_dates_and_datetimes(client: TestClient[Any], admin: dict[str, str]) -> None:
    for since in ("2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00+02:00"):
        assert client.get("/admin/audit", params={"since": since}, headers=admin).status_code == 200


def test_deeply_nested_json_body_is_400(client: TestClient[Any], admin: dict[str, str]) -> None:
    headers = {**admin, "content-type": "application/json"}
    for body in ("[" * 1000 + "]" * 1000, '{"a":' * 1000 + "1" + "}" * 1000):
        assert_problem(client.post("/v1/jobs", content=body, headers=headers), 400, "body")
    long_number = client.post("/v1/jobs", content='{"quantity": ' + "9" * 400 + "}", headers=headers)
    assert "quantity" in {e["field"] for e in assert_problem(long_number, 422)["errors"]}


def test_nul_in_a_body_string_is_422(client: TestClient[Any], admin: dict[str, str]) -> None:
    """PostgreSQL silently cut text at a NUL; no backend may store or compare one."""
    response = client.post("/v1/jobs", json={"job_number": "J\x00X", "notes": "a\x00b"}, headers=admin)
    fields = {e["field"] for e in assert_problem(response, 422)["errors"] if "NUL" in e["detail"]}
    assert fields == {"job_number", "notes"}


def test_problem_bodies_stay_small(client: TestClient[Any], admin: dict[str, str]) -> None:
    """10,000 unknown parameters once made a 1.6 MB reply; a 100 KB value was echoed back whole."""
    query = "&".join(f"{i:x}=" for i in range(10_000))  # names that are no field: one error each
    response = client.get(f"/v1/jobs?{query}", headers=admin)
    body = assert_problem(response, 400)
    assert len(response.content) < 20_000
    assert len(body["errors"]) == MAX_LISTED_ERRORS and body["errors_not_listed"] == 10_000 - MAX_LISTED_ERRORS
    long_value = "x" * 30_000
    response = client.get(f"/v1/jobs?due_date={long_value}&{long_value}=1", headers=admin)
    assert_problem(response, 400)
    assert len(response.content) < 5_000


def test_oversized_body_is_413_with_its_own_type(demo_mapping: Any, admin: dict[str, str]) -> None:
    import msgspec

    small_api = msgspec.structs.replace(demo_mapping.api, max_body_bytes=1000)
    app = create_app(msgspec.structs.replace(demo_mapping, api=small_api))
    oversized = b"[" + b"1," * 2000 + b"1]"
    with TestClient(app) as small:
        response = small.post("/v1/jobs", content=oversized, headers=admin)
        body = assert_problem(response, 413)
        assert body["type"] == "/problems/payload-too-large"
        assert_problem(small.post("/v1/jobs/J000001/actions/release", content=oversized, headers=admin), 413)
    # A resource's own limit wins over the API's: jobs takes larger bodies, so this one is read (and refused
    # for what it holds, not for its size).
    v1 = demo_mapping.versions["v1"]
    jobs = msgspec.structs.replace(v1.resources["jobs"], max_body_bytes=100_000)
    versions = {**demo_mapping.versions, "v1": msgspec.structs.replace(v1, resources={**v1.resources, "jobs": jobs})}
    with TestClient(create_app(msgspec.structs.replace(demo_mapping, api=small_api, versions=versions))) as roomy:
        big_object = b'{"notes": "' + b"x" * 4000 + b'"}'  # one row (not a bulk past max_bulk), 4 kB
        answer = roomy.post("/v1/jobs", content=big_object, headers={**admin, "Content-Type": "application/json"})
        assert answer.status_code == 422, answer.text  # read and judged by its fields, not refused for its size
