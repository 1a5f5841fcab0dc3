"""The committed OpenAPI documents say exactly what the server does: values, parameters, codes, headers.

Checked here with Python's ``jsonschema`` (a floating-point validator, as most clients use)
against real answers of the demo gateway; the schemathesis guard (tests/guards) checks the
same contract by generating requests.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from litestar.testing import TestClient

from gateway import create_app
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import load_mapping
from tests.conftest import TokenFactory, demo_environ

OPENAPI_DIR = Path(__file__).resolve().parents[1] / "openapi"
DOCUMENTS = sorted(OPENAPI_DIR.glob("*.json"))
V1 = json.loads((OPENAPI_DIR / "v1.json").read_text())
PATHS = V1["paths"]
JSON = "application/json"


def validator(schema: dict[str, Any], document: dict[str, Any] = V1) -> jsonschema.Draft202012Validator:
    """A validator for ``schema`` whose ``#/components/...`` references resolve inside ``document``."""
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


def response_schema(path: str, method: str, status: str, media_type: str = JSON) -> dict[str, Any]:
    return dict(PATHS[path][method]["responses"][status]["content"][media_type]["schema"])


def parameter(path: str, method: str, name: str) -> dict[str, Any]:
    return next(p for p in PATHS[path][method]["parameters"] if p["name"] == name)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_no_float_multiple_of_anywhere(path: Path) -> None:
    """multipleOf 0.01 makes floating-point validators refuse valid amounts such as 0.07 or 12.35."""
    document = json.loads(path.read_text())
    assert [node for node in walk(document) if "multipleOf" in node] == []


def test_every_valid_order_total_validates_in_python_jsonschema() -> None:
    """5,000 quantities with two decimals, as a client sends them (JSON floats): none is refused."""
    quantity = V1["components"]["schemas"]["JobsCreate"]["properties"]["quantity"]
    assert quantity["x-scale"] == 2 and "2 decimal places" in quantity["description"]
    check = validator(quantity)
    rng = random.Random(1998)
    totals = [json.loads(str(Decimal(rng.randint(-(10**9), 10**9)).scaleb(-2))) for _ in range(5000)]
    refused = [t for t in totals if not check.is_valid(t)]
    assert refused == []


def test_comma_list_parameters_are_enums_of_what_the_server_takes() -> None:
    fields = parameter("/v1/jobs", "get", "fields")
    assert (fields["style"], fields["explode"]) == ("form", False)
    assert set(fields["schema"]["items"]["enum"]) == set(V1["components"]["schemas"]["Jobs"]["properties"]) - {
        "operations",
        "customer",
        "item",
    }
    sort = parameter("/v1/jobs", "get", "sort")["schema"]["items"]["enum"]
    assert "job_number" in sort and "-job_number" in sort and "status" not in sort  # a code map has no order
    assert parameter("/v1/jobs", "get", "embed")["schema"]["items"]["enum"] == ["operations", "customer", "item"]
    status_in = parameter("/v1/jobs", "get", "status[in]")["schema"]
    assert status_in["items"]["enum"] == ["complete", "on_hold", "planned", "released"]
    assert status_in["minItems"] == 1 and status_in["maxItems"] == 500
    # A comma inside a value is written with a backslash before it (`SMITH\\, J.`).
    job_in = parameter("/v1/jobs", "get", "job_number[in]")["schema"]
    assert "`\\,` is a comma" in job_in["description"]
    items = validator(job_in["items"])
    assert items.is_valid("J000001") and not items.is_valid("J" * 11)


def test_key_parameters_match_the_keys_the_server_parses(client: TestClient[Any], admin: dict[str, str]) -> None:
    composite = validator(parameter("/v1/operations/{key}", "get", "key")["schema"])
    row = client.get("/v1/operations?limit=1", headers=admin).json()["data"][0]
    real_key = f"{row['job_number']},{row['sequence']}"
    assert composite.is_valid(real_key) and client.get(f"/v1/operations/{real_key}", headers=admin).status_code == 200
    assert composite.is_valid(r"J\,1,10")  # an escaped comma inside the first value
    for wrong in ("J000001", "J000001,ten", "J000001,10,20", ",10"):
        assert not composite.is_valid(wrong), wrong
        assert client.get(f"/v1/operations/{wrong}", headers=admin).status_code in (400, 404), wrong
    single = parameter("/v1/jobs/{key}", "get", "key")["schema"]
    assert single == {"type": "string", "maxLength": 10, "minLength": 1}


_ERRORS_BY_METHOD = {
    "get": {"400", "401", "403", "406", "503", "504"},
    "post": {"400", "401", "403", "409", "413", "415", "422", "503", "504"},
    "patch": {"400", "401", "403", "404", "409", "412", "413", "415", "422", "428", "503", "504"},
    "delete": {"400", "401", "403", "404", "409", "412", "428", "503", "504"},
}


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_operation_documents_its_error_codes_as_problem_json(path: Path) -> None:
    document = json.loads(path.read_text())
    for route, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            expected = set(_ERRORS_BY_METHOD[method])
            if "admin" in operation.get("tags", ()):
                # The console's API answers JSON only and without the legacy database (ungated):
                # no content negotiation, no readiness gate, no statement deadline.
                expected = {"400", "401", "403"}
            if "{key}" in route:
                expected.add("404")
            if "/actions/" in route:
                expected -= {"412", "428"}
            assert expected <= codes, (method, route, expected - codes)
            for code in codes - {"200", "201", "204", "304"}:
                response = operation["responses"][code]
                assert set(response["content"]) == {"application/problem+json"}, (method, route, code)
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
            if "503" in codes:
                assert "Retry-After" in operation["responses"]["503"]["headers"]


def test_success_headers_are_documented() -> None:
    get_one = PATHS["/v1/jobs/{key}"]["get"]
    assert "ETag" in get_one["responses"]["200"]["headers"] and "ETag" in get_one["responses"]["304"]["headers"]
    assert parameter("/v1/jobs/{key}", "get", "If-None-Match")["in"] == "header"
    assert "Link" in PATHS["/v1/jobs"]["get"]["responses"]["200"]["headers"]
    assert {"ETag", "Location"} <= set(PATHS["/v1/jobs"]["post"]["responses"]["201"]["headers"])
    headers = V1["components"]["headers"]
    assert re.fullmatch(headers["ETag"]["schema"]["pattern"], '"abc123"')


@pytest.fixture
def writer(writable_db: Path) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(load_mapping(DEMO_MAPPING_PATH, demo_environ(writable_db)))) as client:
        yield client


@pytest.fixture
def planner(token: TokenFactory) -> dict[str, str]:
    return {"Authorization": f"Bearer {token('jobs:read', 'jobs:read:all', 'jobs:write', sub='planner')}"}


def _job(number: str, **changes: Any) -> dict[str, Any]:
    row = {
        "job_number": number,
        "customer_id": "C0001",
        "item_number": "BRKT-00001",
        "status": "on_hold",
        "ordered_at": "2026-11-26T10:00:00Z",
        "quantity": 12.35,
        "rush": False,
        "priority": False,
    }
    return row | changes


def test_bulk_answers_match_their_documented_schemas(writer: TestClient[Any], planner: dict[str, str]) -> None:
    partial = writer.post(
        "/v1/jobs?partial=true", json=[_job("J910001"), _job("J910002", quantity=1.001)], headers=planner
    )
    assert partial.status_code == 200, partial.text
    assert [r["status"] for r in partial.json()["results"]] == [201, 422]
    validator(response_schema("/v1/jobs", "post", "200")).validate(partial.json())

    bulk = writer.post("/v1/jobs", json=[_job("J910003"), _job("J910004")], headers=planner)
    assert bulk.status_code == 201, bulk.text
    validator(response_schema("/v1/jobs", "post", "201")).validate(bulk.json())

    one = writer.post("/v1/jobs", json=_job("J910005", ordered_at="2026-11-26T10:00:00+01:00"), headers=planner)
    assert one.status_code == 201, one.text
    validator(response_schema("/v1/jobs", "post", "201")).validate(one.json())
    assert one.headers["Location"] == "/v1/jobs/J910005"


def test_rows_as_served_validate_against_the_row_schemas(client: TestClient[Any], admin: dict[str, str]) -> None:
    for name in ("customers", "items", "stock", "jobs", "operations"):
        page = client.get(f"/v1/{name}?limit=200", headers=admin)
        assert page.status_code == 200
        validator(response_schema(f"/v1/{name}", "get", "200")).validate(page.json())


def test_one_row_is_json_only(client: TestClient[Any], admin: dict[str, str]) -> None:
    """GET of one row used to ignore Accept and answer JSON to a client that asked for CSV only."""
    csv_only = client.get("/v1/jobs/J000001", headers={**admin, "Accept": "text/csv"})
    assert csv_only.status_code == 406
    assert csv_only.headers["content-type"].startswith("application/problem+json")
    either = client.get("/v1/jobs/J000001", headers={**admin, "Accept": "text/csv, application/json;q=0.1"})
    assert either.status_code == 200 and either.headers["content-type"].startswith(JSON)


def test_a_body_that_is_not_json_is_415(writer: TestClient[Any], planner: dict[str, str]) -> None:
    body = json.dumps(_job("J910006"))
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        refused = writer.post("/v1/jobs", content=body, headers={**planner, "Content-Type": content_type})
        assert refused.status_code == 415, (content_type, refused.text)
        assert refused.json()["type"] == "/problems/unsupported-media-type"
    assert writer.get("/v1/jobs/J910006", headers=planner).status_code == 404  # nothing was written
    vendor = writer.post("/v1/jobs", content=body, headers={**planner, "Content-Type": "application/vnd.x+json"})
    assert vendor.status_code == 201, vendor.text


def test_a_body_over_the_server_limit_has_its_own_problem_type(
    writer: TestClient[Any], planner: dict[str, str]
) -> None:
    huge = b"[" + b"0," * 5_100_000 + b"0]"
    response = writer.post("/v1/jobs", content=huge, headers={**planner, "Content-Type": JSON})
    assert response.status_code == 413
    assert response.json()["type"] == "/problems/payload-too-large"
    assert "413" in PATHS["/v1/jobs"]["post"]["responses"]


def test_exports_are_served_in_their_documented_media_types(client: TestClient[Any], admin: dict[str, str]) -> None:
    """The CSV Content-Type used to carry charset twice (Litestar appends one to every text/ type)."""
    documented = set(PATHS["/v1/items"]["get"]["responses"]["200"]["content"])
    csv = client.get("/v1/items?limit=3", headers={**admin, "Accept": "text/csv"})
    assert csv.status_code == 200
    media_type, *params = (p.strip() for p in csv.headers["content-type"].split(";"))
    assert media_type in documented and sorted(params) == ["charset=utf-8", "header=present"]
    ndjson = client.get("/v1/items", headers={**admin, "Accept": "application/x-ndjson"})
    assert ndjson.headers["content-type"] == "application/x-ndjson" and "application/x-ndjson" in documented
    check = validator({"$ref": "#/components/schemas/Items"})
    lines = ndjson.text.splitlines()
    assert len(lines) > 100 and all(check.is_valid(json.loads(line)) for line in lines)
