"""The read API on every backend gives what it gives on the embedded SQLite demo.

Each backend holds the same rows (``legacy_adapters.demo.load``), so every
answer is compared for equality with the native SQLite app (root ``client``
fixture). Sorting is by keys whose order is the same in every collation
(job numbers, customer numbers); text sorts that depend on the collation are
checked within the backend instead (keyset pages against one big page).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.testing import TestClient

Client = TestClient[Any]

FILTERS = [
    # (resource, query) — one per transform kind, plus operators.
    ("jobs", "status=released"),  # code map over a trimmed CHAR(1)
    ("jobs", "status[in]=on_hold,planned"),
    ("jobs", "due_date[lt]=2026-12-01"),  # yyyymmdd with 0 / 99999999 sentinels
    ("jobs", "due_date[isnull]=true"),
    ("jobs", "rush=true"),  # yes_no
    ("jobs", "priority=false"),  # one_zero
    ("jobs", "quantity[gte]=500"),  # implied decimals
    ("jobs", "customer_id=C0042"),  # trim + CHAR(8) padding
    ("jobs", "job_number[in]=J000001,J000007,J001999"),
    ("jobs", "notes[isnull]=true"),  # '' sentinel on a VARCHAR
    ("jobs", "notes[like]=*DRAWING*"),
    ("jobs", "ordered_at[gte]=2020-01-01T00:00:00Z"),  # date + time pair in Europe/London
    ("jobs", "status=released&rush=false&due_date[gte]=2026-01-01"),
    ("customers", "active=false"),  # active_inactive
    ("customers", "opened_on[gt]=2020-01-01"),  # cyymmdd
    ("customers", "credit_limit[lte]=10000"),
    ("customers", "name[like]=Acme*"),  # CHAR(30): trailing pad absorbed by the *
    ("customers", "email[isnull]=true"),
    ("items", "last_received_on[isnull]=false"),  # julian with 0 sentinel
    ("items", "unit_of_measure=EA"),
    ("items", "price[gt]=100"),
    ("stock", "counted_on[isnull]=true"),  # mm/dd/yyyy with '' sentinel
    ("stock", "warehouse=W01"),
    ("operations", "work_center=LATHE1&done=false"),
    ("operations", "started_at[isnull]=true"),
]


def _all_pages(client: Client, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    url: str | None = path
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["data"])
        cursor = body["next_cursor"]
        url = f"{path}&cursor={cursor}" if cursor else None
    return rows


@pytest.mark.parametrize(("resource", "query"), FILTERS)
def test_filters_match_native(
    db_client: Client, client: Client, admin: dict[str, str], resource: str, query: str
) -> None:
    path = f"/v1/{resource}?{query}&limit=500&count=exact"
    expected = client.get(path, headers=admin)
    got = db_client.get(path, headers=admin)
    assert got.status_code == expected.status_code == 200, got.text
    assert got.json()["count"] == expected.json()["count"]
    assert got.json()["data"] == expected.json()["data"]


def test_keyset_pages_match_native(db_client: Client, client: Client, admin: dict[str, str]) -> None:
    path = "/v1/jobs?sort=-due_date,job_number&limit=137"
    got = _all_pages(db_client, path, admin)
    assert got == _all_pages(client, path, admin)
    assert len({r["job_number"] for r in got}) == len(got) > 137 * 3


def test_keyset_on_collation_dependent_sort(db_client: Client, admin: dict[str, str]) -> None:
    """Names sort by the database's collation; pages must still follow the database's one order."""
    one_page = db_client.get("/v1/customers?sort=name,-credit_limit&limit=500", headers=admin).json()["data"]
    paged = _all_pages(db_client, "/v1/customers?sort=name,-credit_limit&limit=7", admin)
    assert paged == one_page


def test_count_matches_native(db_client: Client, client: Client, admin: dict[str, str]) -> None:
    for resource in ("jobs", "customers", "items", "stock", "operations"):
        path = f"/v1/{resource}?limit=1&count=exact"
        assert db_client.get(path, headers=admin).json()["count"] == client.get(path, headers=admin).json()["count"]


def test_composite_key_get(db_client: Client, client: Client, admin: dict[str, str]) -> None:
    first = client.get("/v1/stock?limit=3", headers=admin).json()["data"][2]
    path = f"/v1/stock/{first['item_number']},{first['warehouse']}?embed=item"
    got = db_client.get(path, headers=admin)
    assert got.status_code == 200, got.text
    assert got.json() == client.get(path, headers=admin).json()
    operation = db_client.get("/v1/operations/J000002,20", headers=admin)
    assert operation.status_code == 200
    assert operation.json() == client.get("/v1/operations/J000002,20", headers=admin).json()
    assert db_client.get("/v1/stock/NOPE,W01", headers=admin).status_code == 404


def test_embed_matches_native(db_client: Client, client: Client, admin: dict[str, str]) -> None:
    for path in (
        "/v1/jobs?embed=operations,customer,item&limit=40&sort=job_number",
        "/v1/items?embed=stock&limit=30",
        "/v1/jobs/J000011?embed=operations",
    ):
        got = db_client.get(path, headers=admin)
        assert got.status_code == 200, got.text
        expected = client.get(path, headers=admin).json()
        # Cursors are signed with each app's own secret: compare the rows.
        assert got.json().get("data", got.json()) == expected.get("data", expected)


def test_ndjson_export_matches_native(db_client: Client, client: Client, admin: dict[str, str]) -> None:
    headers = {**admin, "Accept": "application/x-ndjson"}
    path = "/v1/operations?sort=job_number,sequence&status=finished"
    got = db_client.get(path, headers=headers)
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in got.text.splitlines() if line]
    assert lines == [json.loads(line) for line in client.get(path, headers=headers).text.splitlines() if line]
    assert len(lines) > 1000


def test_etag_and_not_modified(db_client: Client, admin: dict[str, str]) -> None:
    first = db_client.get("/v1/jobs/J000005", headers=admin)
    assert first.status_code == 200
    etag = first.headers["etag"]
    again = db_client.get("/v1/jobs/J000005", headers={**admin, "If-None-Match": etag})
    assert again.status_code == 304
    other = db_client.get("/v1/jobs/J000006", headers=admin).headers["etag"]
    assert other != etag


def test_row_filter_portal_token(db_client: Client, client: Client, token: Any) -> None:
    portal = {"Authorization": f"Bearer {token('jobs:read', customer_id='C0042')}"}
    for path in ("/v1/jobs?limit=500", "/v1/operations?limit=500&sort=job_number"):
        got = db_client.get(path, headers=portal)
        assert got.status_code == 200, got.text
        assert got.json()["data"] == client.get(path, headers=portal).json()["data"]
        assert got.json()["data"]


def test_dirty_rows_served_as_null(db_client: Client, client: Client, admin: dict[str, str]) -> None:
    """Undecodable stored values (20230231, status 'X') come back null on every backend alike."""
    path = "/v1/jobs?limit=500&fields=job_number,status,due_date&sort=job_number"
    rows = _all_pages(db_client, path, admin)
    assert rows == _all_pages(client, path, admin)
    assert any(r["status"] is None for r in rows)


def test_bad_input_is_400_not_500(db_client: Client, admin: dict[str, str]) -> None:
    for path in ("/v1/jobs?due_date[lt]=tomorrow", "/v1/jobs?nosuchfield=1", "/v1/jobs?cursor=garbage"):
        response = db_client.get(path, headers=admin)
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_ready(db_client: Client) -> None:
    assert db_client.get("/health/ready").status_code == 200
