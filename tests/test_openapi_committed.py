"""The committed OpenAPI documents are exactly what the mapping generates, and valid OpenAPI 3.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from openapi_spec_validator import validate

from gateway.cli import main
from legacy_adapters.demo import DEMO_MAPPING_PATH

OPENAPI_DIR = Path(__file__).resolve().parents[1] / "openapi"


@pytest.mark.parametrize("version", ["v1"])
def test_committed_document_matches_generated(version: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["openapi", "-c", str(DEMO_MAPPING_PATH), "--version", version])
    assert result.exit_code == 0, result.output
    committed = (OPENAPI_DIR / f"{version}.json").read_text()
    assert result.output == committed, f"openapi/{version}.json is stale: run `make openapi` and commit it"


def test_document_is_valid_openapi_31_and_describes_the_mapping() -> None:
    document = json.loads((OPENAPI_DIR / "v1.json").read_text())
    validate(document)
    jobs = document["components"]["schemas"]["Jobs"]["properties"]
    assert jobs["status"]["enum"] == ["complete", "on_hold", "planned", "released", None]
    assert jobs["due_date"] == {"type": ["string", "null"], "format": "date"} | (
        {"description": jobs["due_date"]["description"]} if "description" in jobs["due_date"] else {}
    )
    assert jobs["quantity"]["x-scale"] == 2 and "multipleOf" not in jobs["quantity"]
    params = {p["name"] for p in document["paths"]["/v1/jobs"]["get"]["parameters"]}
    assert {"due_date[lt]", "status[in]", "notes[like]", "cursor", "offset", "count", "embed"} <= params
    assert "status[lt]" not in params  # a code map has no meaningful order


def test_served_document_and_docs_page(client: TestClient[Any]) -> None:
    served = client.get("/openapi/v1.json")
    assert served.status_code == 200
    assert served.content.decode() == (OPENAPI_DIR / "v1.json").read_text()
    page = client.get("/docs")
    assert page.status_code == 200 and "/openapi/v1.json" in page.text


def test_writes_are_documented() -> None:
    paths = json.loads((OPENAPI_DIR / "v1.json").read_text())["paths"]
    create = paths["/v1/jobs"]["post"]
    assert {"201", "409", "413", "422"} <= set(create["responses"])
    assert "Idempotency-Key" in [p["name"] for p in create["parameters"]]
    update = paths["/v1/jobs/{key}"]["patch"]
    assert {"412", "422", "428"} <= set(update["responses"])
    assert "If-Match" in [p["name"] for p in update["parameters"]]
    assert "204" in paths["/v1/jobs/{key}"]["delete"]["responses"]
    release = paths["/v1/jobs/{key}/actions/release"]["post"]
    assert release["security"] == [{"bearerAuth": ["jobs:release"]}]
    assert "post" not in paths["/v1/customers"]  # not writable in the mapping
