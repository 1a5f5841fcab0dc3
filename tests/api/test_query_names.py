"""Every documented operation refuses a query parameter it does not take, and takes the ones it documents.

A parameter that is accepted and then does nothing is how a client gets the wrong rows or
the wrong action without an error: ``GET /v1/jobs/J1?status=held`` answered the job whatever
its status, and an export with ``limit=2`` sent every row. The operations come from the
committed OpenAPI documents, so a route added later is covered without touching this file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

OPENAPI = Path(__file__).resolve().parents[2] / "openapi"
DOCUMENTS = sorted(p for p in OPENAPI.glob("v*.json"))
PATH_VALUES = {"key": "J000001", "sync": "shopify", "run_id": "1", "letter_id": "1", "name": "release"}


def _operations() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    found = []
    for document in DOCUMENTS:
        spec = json.loads(document.read_text())
        for path, item in spec["paths"].items():
            for method, operation in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    found.append((method.upper(), path, operation, spec))
    return found


OPERATIONS = _operations()
EACH_OPERATION = pytest.mark.parametrize(
    ("method", "path", "operation", "spec"), OPERATIONS, ids=[f"{m} {p}" for m, p, _, _ in OPERATIONS]
)


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "x"), path)


def _query_parameters(operation: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    resolved = []
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = spec["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[-1]]
        if parameter.get("in") == "query":
            resolved.append(parameter)
    return resolved


def _send(client: TestClient[Any], method: str, url: str, headers: dict[str, str]) -> Any:
    if method in ("POST", "PUT", "PATCH"):
        return client.request(method, url, headers={**headers, "Content-Type": "application/json"}, content=b"{}")
    return client.request(method, url, headers=headers)


def _named_unknown(response: Any, name: str) -> bool:
    if response.status_code != 400:
        return False
    # How each kind of route says the name itself is not one of its parameters (not that a value is bad).
    phrases = ("has no parameter", "unknown parameter", f"unknown field {name.split('[')[0]!r}")
    return any(e.get("parameter") == name and any(p in e.get("detail", "") for p in phrases)
               for e in response.json().get("errors", []))  # fmt: skip


def test_the_operations_come_from_every_committed_document() -> None:
    assert {d.name for d in DOCUMENTS} >= {"v1.json", "v2.json"}
    methods = {(m, p) for m, p, _, _ in OPERATIONS}
    assert ("GET", "/v1/jobs/{key}") in methods and ("POST", "/admin/syncs/{sync}/run") in methods


@EACH_OPERATION
def test_an_operation_refuses_a_parameter_it_does_not_document(
    client: TestClient[Any], admin: dict[str, str], method: str, path: str, operation: dict[str, Any], spec: Any
) -> None:
    response = _send(client, method, f"{_url(path)}?zz_unheard_of=1", admin)
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    assert _named_unknown(response, "zz_unheard_of"), (response.status_code, response.text[:300])
    assert ":str}" not in response.text and ":int}" not in response.text  # the route as documented


@EACH_OPERATION
def test_an_operation_takes_every_parameter_it_documents(
    client: TestClient[Any], admin: dict[str, str], method: str, path: str, operation: dict[str, Any], spec: Any
) -> None:
    for parameter in _query_parameters(operation, spec):
        name, schema = parameter["name"], parameter.get("schema", {})
        if method != "GET" and name != "partial":
            continue
        value = str((schema.get("enum") or [schema.get("default", schema.get("minimum", 1))])[0]).lower()
        response = _send(client, method, f"{_url(path)}?{name}={value}", admin)
        assert not _named_unknown(response, name), (name, response.text[:300])
