"""Versions: v2 extends v1 with its own changes while v1 keeps serving unchanged, with deprecation headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from gateway import create_app
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import parse_mapping
from tests.conftest import demo_environ

V2 = """
  v2:
    extends: v1
    description: v2 renames rush to expedite and drops the stock resource.
    resources:
      stock: null
      items:
        relations:
          stock: null
      jobs:
        fields:
          rush: null
          expedite: {column: RUSHFL, type: boolean, transform: yes_no}
"""


def test_v2_extends_v1_and_v1_is_deprecated(demo_db_path: Path, admin: dict[str, str]) -> None:
    text = DEMO_MAPPING_PATH.read_text()
    text = text.replace("  v1:\n", '  v1:\n    deprecated: true\n    sunset: "Sat, 01 May 2027 00:00:00 GMT"\n', 1)
    text = text.replace("\nsync:", V2 + "\nsync:", 1) if "\nsync:" in text else text + V2
    mapping = parse_mapping(text, environ=demo_environ(demo_db_path))
    with TestClient(create_app(mapping)) as client:
        old: Any = client.get("/v1/jobs/J000001", headers=admin)
        new: Any = client.get("/v2/jobs/J000001", headers=admin)
        assert old.status_code == new.status_code == 200
        assert "rush" in old.json() and "expedite" not in old.json()
        assert new.json()["expedite"] == old.json()["rush"] and "rush" not in new.json()
        assert old.headers["deprecation"] == "true"
        assert old.headers["sunset"] == "Sat, 01 May 2027 00:00:00 GMT"
        assert "deprecation" not in new.headers
        assert client.get("/v1/stock?limit=1", headers=admin).status_code == 200
        assert client.get("/v2/stock?limit=1", headers=admin).status_code == 404
        assert client.get("/v1/nowhere", headers=admin).headers["deprecation"] == "true"  # errors carry it too
        assert client.get("/openapi/v2.json").json()["info"]["version"] == "v2"
