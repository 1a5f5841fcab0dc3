"""A key that repeats is never served silently: every walk is complete or refused, every GET exact or refused.

Hypothesis fills a keyless table with keys drawn from a tiny domain (so repeats
are common) and walks it with random page sizes and sorts. Whatever the data,
the gateway either serves each stored row exactly once, or answers
``key-not-unique``; it never skips a row while ``count=exact`` counts it, and
never answers a GET with one of several rows, and never lets a PATCH or DELETE
change one of several rows.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from gateway import create_app
from gateway.cli import mint_token
from legacy_adapters.mapping.load import parse_mapping
from tests.conftest import JWT_SECRET, MAPPING_PREAMBLE

MAPPING = (
    MAPPING_PREAMBLE
    + """\
versions:
  v1:
    resources:
      shipments:
        table: SHIPLOG
        key: [branch, carrier]
        scopes: {read: "shipments:read", write: "shipments:write"}
        writable: true
        delete: {hard: true}
        fields:
          branch: {column: BRANCH, type: string, transform: trim, length: 3}
          carrier: {column: CARRIER, type: string, transform: trim, length: 4}
          weight: {column: WEIGHT, type: integer}
      orders:
        table: ORDERS
        key: order_number
        scopes: {read: "orders:read"}
        fields:
          order_number: {column: ORDNO, type: integer}
          branch: {column: BRANCH, type: string, transform: trim, length: 3}
          carrier: {column: CARRIER, type: string, transform: trim, length: 4}
        relations:
          shipment: {resource: shipments, "on": {branch: branch, carrier: carrier}, many: false}
"""
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, TestClient[Any], dict[str, str]]]:
    db = tmp_path_factory.mktemp("keys") / "keys.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE SHIPLOG (BRANCH CHAR(3), CARRIER CHAR(4), WEIGHT INTEGER NOT NULL)")
        conn.execute("CREATE TABLE ORDERS (ORDNO INTEGER NOT NULL, BRANCH CHAR(3), CARRIER CHAR(4))")
        conn.executemany("INSERT INTO ORDERS VALUES (?, ?, ?)", [(1, "ATL", "UPS "), (2, "CHI", "FDX ")])
    environ = {
        "BRIDGEHEAD_DB_URL": f"sqlite:///{db}",
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{db.with_name('state.db')}",
    }
    token = mint_token(
        JWT_SECRET, subject="t", scopes=["admin"], claims={}, ttl_s=3600, issuer="bridgehead", audience="bridgehead"
    )
    with TestClient(create_app(parse_mapping(MAPPING, environ=environ))) as client:
        yield db, client, {"Authorization": f"Bearer {token}"}


rows_strategy = st.lists(
    st.tuples(st.sampled_from(["ATL", "CHI"]), st.sampled_from(["UPS ", "FDX ", "OWN "]), st.integers(0, 3)),
    max_size=12,
)


def _refused(response: Any) -> bool:
    if response.status_code == 200:
        return False
    assert response.status_code == 500 and response.json()["type"].endswith("key-not-unique"), response.text
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy, limit=st.integers(1, 5), sort=st.sampled_from(["", "&sort=weight", "&sort=-weight"]))
def test_a_walk_is_complete_or_refused(served: Any, rows: list[Any], limit: int, sort: str) -> None:
    db, client, headers = served
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM SHIPLOG")
        conn.executemany("INSERT INTO SHIPLOG VALUES (?, ?, ?)", rows)
    walked: list[tuple[str, str, int]] = []
    response = client.get(f"/v1/shipments?limit={limit}&count=exact{sort}", headers=headers)
    while not _refused(response):
        body = response.json()
        walked += [(r["branch"], r["carrier"], r["weight"]) for r in body["data"]]
        if not body["next_cursor"]:
            assert body.get("count", len(rows)) == len(rows)
            break
        response = client.get(f"/v1/shipments?limit={limit}{sort}&cursor={body['next_cursor']}", headers=headers)
    else:
        # Refused: only a table whose key repeats is refused.
        assert max(Counter((b, c) for b, c, _ in rows).values()) > 1
        return
    assert Counter(walked) == Counter((b, c.rstrip(), w) for b, c, w in rows)
    keys = Counter((b, c.rstrip()) for b, c, _ in rows)
    for (branch, carrier), n in keys.items():
        one = client.get(f"/v1/shipments/{branch},{carrier}", headers=headers)
        if n == 1:
            assert one.status_code == 200 and (one.json()["branch"], one.json()["carrier"]) == (branch, carrier)
        else:
            assert _refused(one)


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_write_through_a_repeated_key_changes_nothing(served: Any, method: str) -> None:
    db, client, headers = served
    rows = [("ATL", "UPS ", 1), ("ATL", "UPS ", 2), ("CHI", "FDX ", 3)]
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM SHIPLOG")
        conn.executemany("INSERT INTO SHIPLOG VALUES (?, ?, ?)", rows)
    body = {"json": {"weight": 9}} if method == "PATCH" else {}
    response = client.request(method, "/v1/shipments/ATL,UPS", headers=headers, **body)
    assert _refused(response)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT BRANCH, CARRIER, WEIGHT FROM SHIPLOG ORDER BY WEIGHT").fetchall() == rows
    # The unique key next to it is written as usual.
    written = client.request(method, "/v1/shipments/CHI,FDX", headers=headers, **body)
    assert written.status_code in (200, 204), written.text


def test_a_to_one_embed_matching_several_rows_is_refused(served: Any) -> None:
    db, client, headers = served
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM SHIPLOG")
        conn.executemany("INSERT INTO SHIPLOG VALUES (?, ?, ?)", [("ATL", "UPS ", 1), ("CHI", "FDX ", 3)])
    unique = client.get("/v1/orders?embed=shipment&sort=order_number", headers=headers)
    assert [o["shipment"]["weight"] for o in unique.json()["data"]] == [1, 3]
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO SHIPLOG VALUES ('ATL', 'UPS ', 2)")
    assert _refused(client.get("/v1/orders?embed=shipment", headers=headers))
    assert _refused(client.get("/v1/orders/1?embed=shipment", headers=headers))
    assert client.get("/v1/orders/2?embed=shipment", headers=headers).json()["shipment"]["weight"] == 3
