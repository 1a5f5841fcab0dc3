"""Smaller filter semantics: decimals finer than the scale, ranges on nullable fields, fields with embeds."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from gateway.params import split_escaped

JOBS = "SELECT TRIM(JOBNO) FROM JOBMAST WHERE DELFLG <> 'Y'"


def legacy(db: Path, sql: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return sorted(r[0] for r in conn.execute(sql))


def served(client: TestClient[Any], headers: dict[str, str], **params: str) -> tuple[list[str], int]:
    response = client.get("/v1/jobs", params={**params, "limit": "500", "fields": "job_number", "count": "exact"},
                          headers=headers)  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    rows = [r["job_number"] for r in body["data"]]
    while body["next_cursor"]:
        body = client.get(
            "/v1/jobs", params={**params, "limit": "500", "fields": "job_number", "cursor": body["next_cursor"]},
            headers=headers,
        ).json()  # fmt: skip
        rows.extend(r["job_number"] for r in body["data"])
    return sorted(rows), response.json()["count"]


@pytest.mark.parametrize(
    ("query", "where"),
    [
        # quantity has 2 implied decimals: a value between two cents is answered on the grid.
        ({"quantity[gt]": "1500.501"}, "QTY >= 150051"),
        ({"quantity[gte]": "1500.501"}, "QTY >= 150051"),
        ({"quantity[lt]": "1500.501"}, "QTY <= 150050"),
        ({"quantity[lte]": "1500.509"}, "QTY <= 150050"),
        ({"quantity[ne]": "1500.501"}, "1 = 1"),
        ({"quantity[in]": "1500.501,1343"}, "QTY = 134300"),
        # notes may hold NULL: a range compares the values that exist (and '' reads as null).
        ({"notes[gte]": "M"}, "NOTES IS NOT NULL AND NOTES <> '' AND RTRIM(NOTES) >= 'M'"),
        ({"notes[lt]": "D"}, "NOTES IS NOT NULL AND NOTES <> '' AND NOTES < 'D'"),
    ],
)
def test_filters_answer_what_the_values_say(
    client: TestClient[Any], admin: dict[str, str], demo_db_path: Path, query: dict[str, str], where: str
) -> None:
    expected = legacy(demo_db_path, f"{JOBS} AND {where}")
    assert expected
    rows, count = served(client, admin, **query)
    assert rows == expected and count == len(expected)


def test_equal_to_a_value_finer_than_the_scale_matches_nothing(client: TestClient[Any], admin: dict[str, str]) -> None:
    assert served(client, admin, quantity="1343.001") == ([], 0)
    assert served(client, admin, quantity="1343.000")[1] > 0  # trailing zeros are no extra places


def test_sorting_a_nullable_field_names_the_real_reason(client: TestClient[Any], admin: dict[str, str]) -> None:
    response = client.get("/v1/jobs", params={"sort": "notes"}, headers=admin)
    assert response.status_code == 400
    assert "may hold NULL" in response.json()["errors"][0]["detail"]


def test_fields_may_name_an_embedded_relation(client: TestClient[Any], admin: dict[str, str]) -> None:
    response = client.get("/v1/jobs", params={"fields": "status,operations", "embed": "operations", "limit": "3"},
                          headers=admin)  # fmt: skip
    assert response.status_code == 200, response.text
    rows = response.json()["data"]
    assert rows and all(set(row) == {"status", "operations"} for row in rows)
    assert any(row["operations"] for row in rows)
    key = client.get("/v1/jobs", params={"limit": "1"}, headers=admin).json()["data"][0]["job_number"]
    one = client.get(f"/v1/jobs/{key}", params={"fields": "status,operations", "embed": "operations"}, headers=admin)
    assert one.status_code == 200 and set(one.json()) == {"status", "operations"}


def test_a_relation_in_fields_without_embed_says_how_to_ask(client: TestClient[Any], admin: dict[str, str]) -> None:
    response = client.get("/v1/jobs", params={"fields": "status,operations"}, headers=admin)
    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"] == "'operations' is a relation: add embed=operations to serve it"


@pytest.mark.parametrize(
    ("raw", "values"),
    [
        ("SMITH\\, J.,ZETA", ["SMITH, J.", "ZETA"]),
        ("a\\\\,b", ["a\\", "b"]),
        ("plain", ["plain"]),
        ("x,,y", ["x", "", "y"]),
    ],
)
def test_in_lists_take_backslash_escapes(raw: str, values: list[str]) -> None:
    assert split_escaped(raw) == values
