"""Every breaking change is flagged, every compatible one passes with its reason."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.openapi_diff import diff_documents

ROOT = Path(__file__).resolve().parents[3]


def _base() -> dict[str, Any]:
    """A small document shaped like ours: a list, a get by key, a create, schemas by $ref."""
    job = {
        "type": "object",
        "required": ["job_number", "status"],
        "properties": {
            "job_number": {"type": "string"},
            "status": {"type": "string", "enum": ["released", "on_hold", "complete"]},
            "due_date": {"type": ["string", "null"], "format": "date"},
            "quantity": {"type": "number"},
        },
    }
    create = {
        "type": "object",
        "required": ["job_number"],
        "properties": {"job_number": {"type": "string", "maxLength": 10}, "note": {"type": "string"}},
    }
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "v1"},
        "paths": {
            "/v1/jobs": {
                "get": {
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["released", "on_hold"]},
                        },
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 500}},
                    ],
                    "responses": {
                        "200": {
                            "description": "page",
                            "headers": {"Link": {"schema": {"type": "string"}}},
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}
                                        },
                                    }
                                },
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        "400": {"description": "bad", "content": problem},
                    },
                },
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobCreate"}}},
                    },
                    "responses": {"201": {"description": "made"}, "422": {"description": "bad", "content": problem}},
                },
            },
            "/v1/jobs/{key}": {
                "parameters": [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {
                    "responses": {
                        "200": {
                            "description": "one",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}},
                        }
                    }
                },
            },
        },
        "components": {"schemas": {"Job": job, "JobCreate": create, "Problem": {"type": "object"}}},
    }


def _job(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["components"]["schemas"]["Job"]


def _create(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["components"]["schemas"]["JobCreate"]


def _list(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["paths"]["/v1/jobs"]["get"]


def _param(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in _list(doc)["parameters"] if p["name"] == name)


Edit = Callable[[dict[str, Any]], Any]

BREAKING: dict[str, tuple[Edit, str]] = {
    "path removed": (lambda d: d["paths"].pop("/v1/jobs/{key}"), "path removed"),
    "operation removed": (lambda d: d["paths"]["/v1/jobs"].pop("post"), "operation removed"),
    "response field removed": (lambda d: _job(d)["properties"].pop("quantity"), "field removed"),
    "response field renamed": (
        lambda d: _job(d)["properties"].__setitem__("qty", _job(d)["properties"].pop("quantity")),
        "field removed (or renamed)",
    ),
    "response type widened to null": (
        lambda d: _job(d)["properties"]["quantity"].__setitem__("type", ["number", "null"]),
        "may now be null",
    ),
    "response type changed": (
        lambda d: _job(d)["properties"]["quantity"].__setitem__("type", "string"),
        "may now be string",
    ),
    "request type narrowed": (
        lambda d: _param(d, "limit")["schema"].__setitem__("type", "boolean"),
        "no longer accepts integer",
    ),
    "format changed": (
        lambda d: _job(d)["properties"]["due_date"].__setitem__("format", "date-time"),
        "format 'date' -> 'date-time'",
    ),
    "new required parameter": (
        lambda d: _list(d)["parameters"].append({"name": "site", "in": "query", "required": True, "schema": {}}),
        "new required parameter",
    ),
    "parameter became required": (lambda d: _param(d, "limit").__setitem__("required", True), "became required"),
    "parameter removed": (lambda d: _list(d)["parameters"].pop(0), "parameter removed"),
    "request enum value removed": (
        lambda d: _param(d, "status")["schema"]["enum"].remove("on_hold"),
        "enum value(s) removed: ['on_hold']",
    ),
    "response enum value removed": (
        lambda d: _job(d)["properties"]["status"]["enum"].remove("complete"),
        "enum value(s) removed: ['complete']",
    ),
    "response enum value renamed": (
        lambda d: _job(d)["properties"]["status"].__setitem__("enum", ["released", "held", "complete"]),
        "enum value(s) removed: ['on_hold']",
    ),
    "request parameter newly limited to an enum": (
        lambda d: _param(d, "limit")["schema"].__setitem__("enum", [50, 100]),
        "now limited to",
    ),
    "status code removed": (lambda d: _list(d)["responses"].pop("400"), "status code removed"),
    "success status added": (
        lambda d: _list(d)["responses"].__setitem__("206", {"description": "partial"}),
        "status code added",
    ),
    "response may now be absent": (lambda d: _job(d)["required"].remove("status"), "may now be absent"),
    "request field became required": (lambda d: _create(d)["required"].append("note"), "field became required"),
    "new required request field": (
        lambda d: (
            _create(d)["properties"].__setitem__("site", {"type": "string"}),
            _create(d)["required"].append("site"),
        ),
        "new required field",
    ),
    "request field removed": (lambda d: _create(d)["properties"].pop("note"), "field removed"),
    "request maxLength narrowed": (
        lambda d: _create(d)["properties"]["job_number"].__setitem__("maxLength", 8),
        "maxLength 10 -> 8",
    ),
    "request maximum narrowed": (lambda d: _param(d, "limit")["schema"].__setitem__("maximum", 100), "maximum"),
    "media type removed": (
        lambda d: _list(d)["responses"]["200"]["content"].pop("text/csv"),
        "media type removed",
    ),
    "response header removed": (lambda d: _list(d)["responses"]["200"].pop("headers"), "response header removed"),
    "success status changed": (
        lambda d: d["paths"]["/v1/jobs"]["post"]["responses"].__setitem__(
            "200", d["paths"]["/v1/jobs"]["post"]["responses"].pop("201")
        ),
        "status code removed",
    ),
    "request format narrowed": (
        lambda d: _create(d)["properties"]["note"].__setitem__("format", "date"),
        "format None -> 'date'",
    ),
    "number became a string (money as text)": (
        lambda d: _job(d)["properties"]["quantity"].update(type="string", format="decimal"),
        "may now be string",
    ),
}

COMPATIBLE: dict[str, tuple[Edit, str]] = {
    "path added": (lambda d: d["paths"].__setitem__("/v1/items", {"get": {"responses": {}}}), "path added"),
    "operation added": (
        lambda d: d["paths"]["/v1/jobs/{key}"].__setitem__("delete", {"responses": {"204": {"description": "x"}}}),
        "operation added",
    ),
    "optional parameter added": (
        lambda d: _list(d)["parameters"].append({"name": "embed", "in": "query", "schema": {"type": "string"}}),
        "new optional parameter",
    ),
    "response field added": (
        lambda d: _job(d)["properties"].__setitem__("rush", {"type": "boolean"}),
        "field added",
    ),
    "response enum widened": (
        lambda d: _job(d)["properties"]["status"]["enum"].append("cancelled"),
        "enum widened on a response: clients must tolerate unknown values",
    ),
    "request enum widened": (
        lambda d: _param(d, "status")["schema"]["enum"].append("complete"),
        "enum widened: more values accepted",
    ),
    "error status added": (
        lambda d: _list(d)["responses"].__setitem__("429", {"description": "slow down"}),
        "status code added",
    ),
    "request maxLength widened": (
        lambda d: _create(d)["properties"]["job_number"].__setitem__("maxLength", 20),
        None,
    ),
    "optional request field added": (
        lambda d: _create(d)["properties"].__setitem__("rush", {"type": "boolean"}),
        "field added",
    ),
    "response narrowed from nullable": (
        lambda d: _job(d)["properties"]["due_date"].__setitem__("type", "string"),
        "type",
    ),
    "media type added": (
        lambda d: _list(d)["responses"]["200"]["content"].__setitem__("application/x-ndjson", {"schema": {}}),
        "media type added",
    ),
    "description edited": (lambda d: _list(d).__setitem__("description", "new words"), None),
    "operation deprecated": (lambda d: _list(d).__setitem__("deprecated", True), "operation deprecated"),
}


@pytest.mark.parametrize("case", sorted(BREAKING))
def test_each_breaking_change_is_flagged(case: str) -> None:
    edit, words = BREAKING[case]
    new = copy.deepcopy(base := _base())
    edit(new)
    changes = diff_documents(base, new)
    breaking = [c for c in changes if c.breaking]
    assert breaking, f"{case}: not flagged; saw {changes}"
    assert any(words in str(c) for c in breaking), [str(c) for c in breaking]


@pytest.mark.parametrize("case", sorted(COMPATIBLE))
def test_each_compatible_change_passes_with_its_reason(case: str) -> None:
    edit, words = COMPATIBLE[case]
    new = copy.deepcopy(base := _base())
    edit(new)
    changes = diff_documents(base, new)
    assert not [c for c in changes if c.breaking], [str(c) for c in changes]
    if words is not None:
        assert any(words in str(c) for c in changes), [str(c) for c in changes]


def test_request_body_rules() -> None:
    base = _base()
    removed = copy.deepcopy(base)
    removed["paths"]["/v1/jobs"]["post"].pop("requestBody")
    assert [c.what for c in diff_documents(base, removed) if c.breaking] == ["request body removed"]
    added = copy.deepcopy(base)
    added["paths"]["/v1/jobs/{key}"]["get"]["requestBody"] = {"required": True, "content": {}}
    assert [c.what for c in diff_documents(base, added) if c.breaking] == ["a request body is now required"]


def test_where_names_the_operation_status_media_and_field() -> None:
    new = copy.deepcopy(base := _base())
    _job(new)["properties"].pop("quantity")
    wheres = {c.where for c in diff_documents(base, new)}
    assert "GET /v1/jobs response 200 application/json .data[] .quantity" in wheres
    assert "GET /v1/jobs/{key} response 200 application/json .quantity" in wheres


def test_identical_and_recursive_documents() -> None:
    base = _base()
    _job(base)["properties"]["parent"] = {"$ref": "#/components/schemas/Job"}  # a cycle
    assert diff_documents(base, copy.deepcopy(base)) == []
    committed = json.loads((ROOT / "openapi" / "v1.json").read_text())
    assert diff_documents(committed, committed) == []


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "openapi", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_cli_exits_non_zero_on_a_breaking_change_only(tmp_path: Path) -> None:
    old, new, same = tmp_path / "old.json", tmp_path / "new.json", tmp_path / "same.json"
    old.write_text(json.dumps(_base()))
    same.write_text(json.dumps(_base()))
    broken = _base()
    _job(broken)["properties"].pop("quantity")
    new.write_text(json.dumps(broken))
    result = _cli("diff", str(old), str(new))
    assert result.returncode == 1 and "BREAKING" in result.stdout and ".quantity: field removed" in result.stdout
    assert _cli("diff", str(old), str(same)).returncode == 0
    missing = _cli("diff", str(old), str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "nope.json" in missing.stderr and "Traceback" not in missing.stderr


def test_the_demo_v2_is_a_breaking_successor_of_v1_for_each_reason() -> None:
    """The demo's v2 makes each change docs/mapping.md lists; the diff names every one of them."""
    v1 = json.loads((ROOT / "openapi" / "v1.json").read_text())
    v2 = json.loads((ROOT / "openapi" / "v2.json").read_text())
    as_v2 = json.loads(json.dumps(v1).replace("/v1/", "/v2/"))  # same paths, so fields are compared
    found = [str(c) for c in diff_documents(as_v2, v2) if c.breaking]
    expected = {
        "renamed field": "GET /v2/jobs/{key} response 200 application/json .rush: field removed (or renamed)",
        "removed field": "GET /v2/jobs/{key} response 200 application/json .priority: field removed (or renamed)",
        "new enum": "GET /v2/jobs/{key} response 200 application/json .status: enum value(s) removed: ['complete'",
        "money as text": "GET /v2/customers/{key} response 200 application/json .credit_limit: may now be string",
        "split resource": "GET /v2/items/{key} response 200 application/json .standard_cost: field removed",
    }
    for reason, words in expected.items():
        assert any(words in line for line in found), f"{reason}: {words!r} not in {found}"
    added = [str(c) for c in diff_documents(as_v2, v2) if not c.breaking]
    assert any("/v2/item_costs: path added" in line for line in added)
    assert any(".stock: field added" in line for line in added)  # the new embedded relation
