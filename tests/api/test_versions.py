"""Versions: the demo's v2 extends v1 with a team's real changes while v1 keeps serving unchanged.

v1's answers are pinned byte for byte by tests/snapshots; here: what v2 changed, and the
lifecycle headers (RFC 9745 Deprecation, RFC 8594 Sunset, RFC 5829 successor-version) on v1.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from gateway import create_app
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import parse_mapping
from tests.conftest import TokenFactory, demo_environ

DEPRECATED_AT = "@1796083200"  # 2026-12-01T00:00:00Z, the demo's `deprecated: "2026-12-01"`
SUNSET = "Tue, 01 Jun 2027 00:00:00 GMT"


def test_v2_renames_removes_and_retypes_fields(client: TestClient[Any], admin: dict[str, str]) -> None:
    old = client.get("/v1/jobs/J000001", headers=admin).json()
    new = client.get("/v2/jobs/J000001", headers=admin).json()
    assert new["expedite"] is old["rush"] and "rush" not in new  # renamed
    assert "priority" in old and "priority" not in new  # removed
    assert new["status"] == old["status"].upper()  # the new enum
    old_customer = client.get("/v1/customers/C0042", headers=admin).json()
    new_customer = client.get("/v2/customers/C0042", headers=admin).json()
    assert new_customer["company_name"] == old_customer["name"] and "name" not in new_customer
    # Money as an exact decimal string with the stored places; v1 keeps its JSON number.
    assert isinstance(new_customer["credit_limit"], str)
    assert Decimal(new_customer["credit_limit"]) == Decimal(str(old_customer["credit_limit"]))
    assert new_customer["credit_limit"].split(".")[1] == "00"


def test_v2_status_enum_serves_unknown_codes_as_unknown(
    client: TestClient[Any], admin: dict[str, str], demo_db_path: Path
) -> None:
    with sqlite3.connect(demo_db_path) as conn:
        (odd,) = conn.execute(
            "SELECT TRIM(JOBNO) FROM JOBMAST WHERE DELFLG <> 'Y' AND JSTAT NOT IN ('R','H','C','P') LIMIT 1"
        ).fetchone()
    assert client.get(f"/v1/jobs/{odd}", headers=admin).json()["status"] is None
    assert client.get(f"/v2/jobs/{odd}", headers=admin).json()["status"] == "UNKNOWN"
    unknown = client.get("/v2/jobs?status=UNKNOWN&limit=500&fields=job_number", headers=admin).json()["data"]
    assert odd in {row["job_number"] for row in unknown}
    refused = client.get("/v2/jobs?status=released", headers=admin)  # v1's spelling is not v2's
    assert refused.status_code == 400 and refused.headers["content-type"] == "application/problem+json"


def test_v2_filters_money_strings_by_value(client: TestClient[Any], admin: dict[str, str]) -> None:
    rows = client.get("/v2/items?price[gte]=6000.5&sort=price&limit=500", headers=admin).json()["data"]
    assert rows and all(Decimal(r["price"]) >= Decimal("6000.5") for r in rows)
    assert all(len(r["price"].split(".")[1]) == 4 for r in rows)  # scale 4, always written out
    v1 = client.get("/v1/items?price[gte]=6000.5&sort=price&limit=500", headers=admin).json()["data"]
    assert [r["item_number"] for r in rows] == [r["item_number"] for r in v1]


def test_v2_splits_costs_out_of_items(client: TestClient[Any], token: TokenFactory) -> None:
    costs = {"Authorization": f"Bearer {token('costs:read')}"}
    item = client.get("/v2/items/BRKT-00001?embed=costs", headers=costs).json()
    assert "standard_cost" not in item
    assert item["costs"] == {"item_number": "BRKT-00001", "standard_cost": item["costs"]["standard_cost"]}
    v1 = client.get("/v1/items/BRKT-00001", headers=costs).json()
    assert Decimal(item["costs"]["standard_cost"]) == Decimal(str(v1["standard_cost"]))
    assert client.get("/v2/item_costs/BRKT-00001", headers=costs).json() == item["costs"]
    # The split resource keeps v1's rule: cost data needs costs:read.
    assert client.get("/v2/item_costs/BRKT-00001").status_code == 401
    nope = {"Authorization": f"Bearer {token('stock:read')}"}
    assert client.get("/v2/item_costs/BRKT-00001", headers=nope).status_code == 403


def test_v2_embeds_the_stock_of_a_jobs_item(client: TestClient[Any], admin: dict[str, str]) -> None:
    job = client.get("/v2/jobs/J000001?embed=stock", headers=admin).json()
    stock = client.get(f"/v1/stock?item_number={job['item_number']}&limit=50", headers=admin).json()["data"]
    assert job["stock"] == stock and len(stock) >= 2


def test_v2_writes_take_money_as_text_and_new_names(writable_db: Path, token: TokenFactory, tmp_path: Path) -> None:
    mapping = parse_mapping(DEMO_MAPPING_PATH.read_text(), environ=demo_environ(writable_db))
    writer = {"Authorization": f"Bearer {token('jobs:read:all', 'jobs:write')}"}
    with TestClient(create_app(mapping)) as client:
        body = {
            "job_number": "J9V2", "customer_id": "C0001", "item_number": "BRKT-00001",
            "ordered_at": "2026-12-01T09:30:00Z", "quantity": 12.5, "expedite": True, "status": "PLANNED",
        }  # fmt: skip
        created = client.post("/v2/jobs", json=body, headers=writer)
        assert created.status_code == 201, created.text
        assert client.get("/v1/jobs/J9V2", headers=writer).json()["rush"] is True
        bad = client.post("/v2/jobs", json={**body, "job_number": "J9V3", "rush": True}, headers=writer)
        assert bad.status_code == 422  # v1's name is unknown in v2
    with sqlite3.connect(writable_db) as conn:
        assert conn.execute("SELECT JSTAT, RUSHFL FROM JOBMAST WHERE JOBNO = 'J9V2      '").fetchone() == ("P", "Y")


@pytest.mark.parametrize(
    ("path", "successor"),
    [
        ("/v1/jobs/J000001", "/v2/jobs/J000001"),
        ("/v1/jobs?limit=1", "/v2/jobs"),
        ("/v1/stock?limit=1", "/v2/stock"),
        ("/v1/nowhere", "/openapi/v2.json"),  # errors carry it too; no such resource in v2
    ],
)
def test_v1_announces_its_retirement(client: TestClient[Any], admin: dict[str, str], path: str, successor: str) -> None:
    response = client.get(path, headers=admin)
    assert response.headers["deprecation"] == DEPRECATED_AT
    assert response.headers["sunset"] == SUNSET
    assert response.links["successor-version"]["url"] == successor
    if "limit=1" in path:
        assert response.links["next"]["url"].startswith(path.split("?")[0])  # pagination is untouched


def test_v2_announces_nothing(client: TestClient[Any], admin: dict[str, str]) -> None:
    response = client.get("/v2/jobs?limit=1", headers=admin)
    assert {"deprecation", "sunset"}.isdisjoint(response.headers)
    assert set(response.links) == {"next"}
    assert client.get("/openapi/v2.json").json()["info"]["version"] == "v2"
