"""Listing over HTTP: filters in API terms give the rows a hand-written legacy query gives."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient


def legacy(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The oracle: the query a developer would write by hand against the legacy table."""
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def all_pages(client: TestClient[Any], url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        rows.extend(response.json()["data"])
        # By rel: a deprecated version's answers link to their successor as well.
        url = response.links.get("next", {}).get("url", "")
    return rows


JOBS = "SELECT TRIM(JOBNO) FROM JOBMAST WHERE DELFLG <> 'Y'"


@pytest.mark.parametrize(
    ("query", "where", "params"),
    [
        ("status=released", "JSTAT = 'R'", ()),
        # 'X' is no known code: served as null, so it neither equals nor differs from anything.
        ("status[ne]=complete", "JSTAT <> 'C' AND JSTAT IN ('R', 'H', 'C', 'P')", ()),
        ("status[isnull]=true", "JSTAT NOT IN ('R', 'H', 'C', 'P')", ()),
        ("status[ilike]=ON*", "JSTAT = 'H'", ()),
        ("quantity[gt]=1500.501", "QTY >= 150051", ()),
        ("quantity[lt]=1500.509", "QTY <= 150050", ()),
        ("status[in]=on_hold,planned", "JSTAT IN ('H', 'P')", ()),
        ("due_date[lt]=2026-12-01", "DUEDT < 20261201 AND DUEDT NOT IN (0, 99999999)", ()),
        ("due_date[gte]=2026-06-01", "DUEDT >= 20260601 AND DUEDT NOT IN (0, 99999999)", ()),
        ("due_date=2026-03-28", "DUEDT = 20260328", ()),
        ("due_date[isnull]=true", "DUEDT IN (0, 99999999)", ()),
        ("due_date[isnull]=false", "DUEDT NOT IN (0, 99999999)", ()),
        ("rush=true", "RUSHFL = 'Y'", ()),
        ("priority=false", "PRIO = 0", ()),
        ("quantity[gt]=1500.5", "QTY > 150050", ()),
        ("quantity[lte]=100", "QTY <= 10000", ()),
        ("customer_id=C0001", "CUSTNO = 'C0001   '", ()),
        ("customer_id[in]=C0001,C0002,C0003", "CUSTNO IN ('C0001   ', 'C0002   ', 'C0003   ')", ()),
        ("job_number[like]=J00012*", "JOBNO LIKE 'J00012%'", ()),
        ("notes[like]=*REV C", "RTRIM(NOTES) LIKE '%REV C'", ()),
        ("notes[isnull]=true", "(NOTES IS NULL OR NOTES = '')", ()),
        ("ordered_at[gte]=2026-03-07T12:00:00Z", "(ORDDT > 20260307 OR (ORDDT = 20260307 AND ORDTM >= 120000))", ()),
    ],
)
def test_filter_matches_hand_written_sql(
    client: TestClient[Any], admin: dict[str, str], demo_db_path: Path, query: str, where: str, params: tuple[Any, ...]
) -> None:
    expected = sorted(r[0] for r in legacy(demo_db_path, f"{JOBS} AND {where}", *params))
    got = sorted(r["job_number"] for r in all_pages(client, f"/v1/jobs?{query}&limit=500&fields=job_number", admin))
    assert got == expected
    assert expected, f"the demo data should have rows for {query}"


def test_values_are_translated_into_clean_json(
    client: TestClient[Any], admin: dict[str, str], demo_db_path: Path
) -> None:
    (raw,) = legacy(
        demo_db_path,
        "SELECT JOBNO, CUSTNO, JSTAT, DUEDT, RUSHFL, QTY, PRIO, ORDDT, ORDTM FROM JOBMAST "
        "WHERE DELFLG <> 'Y' AND JSTAT = 'H' AND DUEDT BETWEEN 19980101 AND 20271231 AND NOTES IS NOT NULL LIMIT 1",
    )
    job = client.get(f"/v1/jobs/{raw[0].strip()}", headers=admin).json()
    assert job["job_number"] == raw[0].rstrip() and len(raw[0]) == 10  # CHAR(10) padding trimmed
    assert job["customer_id"] == raw[1].rstrip()
    assert job["status"] == "on_hold"
    assert job["due_date"] == dt.datetime.strptime(str(raw[3]), "%Y%m%d").date().isoformat()
    assert job["rush"] is (raw[4] == "Y")
    assert Decimal(str(job["quantity"])) == Decimal(raw[5]) / 100
    assert job["priority"] is (raw[6] == 1)
    ordered = dt.datetime.fromisoformat(job["ordered_at"])
    assert ordered.tzinfo is not None
    local = ordered.astimezone(__import__("zoneinfo").ZoneInfo("Europe/London"))
    assert (int(local.strftime("%Y%m%d")), int(local.strftime("%H%M%S"))) == (raw[7], raw[8])


def test_dirty_values_are_served_as_null_and_logged(
    demo_mapping: Any, admin: dict[str, str], demo_db_path: Path
) -> None:
    from structlog.testing import capture_logs

    from gateway import create_app

    bad_date = legacy(demo_db_path, "SELECT TRIM(JOBNO), DUEDT FROM JOBMAST WHERE DUEDT = 20230231 AND DELFLG <> 'Y'")
    bad_status = legacy(demo_db_path, "SELECT TRIM(JOBNO) FROM JOBMAST WHERE JSTAT = 'X' AND DELFLG <> 'Y'")
    assert bad_date and bad_status
    with TestClient(create_app(demo_mapping)) as fresh, capture_logs() as logs:
        date_row = fresh.get(f"/v1/jobs/{bad_date[0][0]}", headers=admin)
        status_row = fresh.get(f"/v1/jobs/{bad_status[0][0]}", headers=admin)
        for _ in range(5):  # the same dirty value read again is not logged again
            assert fresh.get(f"/v1/jobs/{bad_date[0][0]}", headers=admin).json()["due_date"] is None
    assert date_row.status_code == 200 and date_row.json()["due_date"] is None
    assert date_row.json()["job_number"] == bad_date[0][0]  # the rest of the row is still served
    assert status_row.status_code == 200 and status_row.json()["status"] is None
    warnings = [e for e in logs if e["event"] == "undecodable value served as null"]
    assert {(w["table"], w["column"]) for w in warnings} == {("JOBMAST", "DUEDT"), ("JOBMAST", "JSTAT")}
    assert len(warnings) == 2
    assert any(w["key"] == [bad_date[0][0].ljust(10)] for w in warnings)


def test_mapping_where_hides_soft_deleted_rows(
    client: TestClient[Any], admin: dict[str, str], demo_db_path: Path
) -> None:
    deleted = legacy(demo_db_path, "SELECT TRIM(JOBNO) FROM JOBMAST WHERE DELFLG = 'Y'")
    assert deleted
    assert client.get(f"/v1/jobs/{deleted[0][0]}", headers=admin).status_code == 404
    listed = client.get(f"/v1/jobs?job_number[in]={','.join(d[0] for d in deleted)}", headers=admin).json()
    assert listed["data"] == []


def test_sort_fields_and_count(client: TestClient[Any], admin: dict[str, str], demo_db_path: Path) -> None:
    response = client.get(
        "/v1/jobs?status=released&sort=-due_date,job_number&fields=job_number,due_date&limit=5&count=exact",
        headers=admin,
    )
    body = response.json()
    expected = legacy(
        demo_db_path,
        f"{JOBS.replace('TRIM(JOBNO)', 'TRIM(JOBNO), DUEDT')} AND JSTAT = 'R' ORDER BY DUEDT DESC, JOBNO LIMIT 5",
    )
    (count,) = legacy(demo_db_path, "SELECT COUNT(*) FROM JOBMAST WHERE DELFLG <> 'Y' AND JSTAT = 'R'")[0]
    assert [r["job_number"] for r in body["data"]] == [e[0] for e in expected]
    assert all(set(r) == {"job_number", "due_date"} for r in body["data"])
    assert body["count"] == count


def test_offset_paging_for_page_numbered_grids(client: TestClient[Any], admin: dict[str, str]) -> None:
    first = client.get("/v1/jobs?limit=10&offset=0&fields=job_number", headers=admin).json()
    third = client.get("/v1/jobs?limit=10&offset=20&fields=job_number", headers=admin)
    every = client.get("/v1/jobs?limit=30&fields=job_number", headers=admin).json()["data"]
    assert third.json()["data"] == every[20:30]
    assert first["data"] == every[:10]
    assert "offset=30" in third.headers["link"]


def test_embed_attaches_relations_in_one_query_per_page(
    client: TestClient[Any], admin: dict[str, str], demo_db_path: Path
) -> None:
    from sqlalchemy import event

    app_ctx = client.app.state["ctx"]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    database = app_ctx.reader.database
    event.listen(database.engine, "before_cursor_execute", count)
    stop = database.observe_statements(lambda statement, *_: count(None, None, statement))  # reads on the raw cursor
    try:
        body = client.get("/v1/jobs?limit=20&embed=operations,customer&sort=job_number", headers=admin).json()
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
        stop()
    assert len(statements) == 3  # the page, then one query per relation: never one per row
    for job in body["data"]:
        ops = legacy(demo_db_path, "SELECT OPSEQ FROM JOBOPS WHERE TRIM(JOBNO) = ? ORDER BY OPSEQ", job["job_number"])
        assert [o["sequence"] for o in job["operations"]] == [o[0] for o in ops]
        assert job["customer"] is None or job["customer"]["customer_id"] == job["customer_id"]


def test_composite_key_addresses_one_operation(client: TestClient[Any], admin: dict[str, str]) -> None:
    response = client.get("/v1/operations/J000001,20", headers=admin)
    assert response.status_code == 200
    assert (response.json()["job_number"], response.json()["sequence"]) == ("J000001", 20)
    assert client.get("/v1/operations/J000001,999", headers=admin).status_code == 404
    wrong = client.get("/v1/operations/J000001", headers=admin)
    assert wrong.status_code == 400 and "job_number,sequence" in wrong.json()["detail"]


def test_table_without_primary_key_is_served_by_its_declared_key(client: TestClient[Any], token: Any) -> None:
    # STKBAL has no primary key at all; the mapping declares (item_number, warehouse).
    headers = {"Authorization": f"Bearer {token('stock:read')}"}
    first = client.get("/v1/stock?limit=1", headers=headers).json()["data"][0]
    again = client.get(f"/v1/stock/{first['item_number']},{first['warehouse']}", headers=headers)
    assert again.status_code == 200 and again.json() == first


def test_etag_and_if_none_match(client: TestClient[Any], admin: dict[str, str]) -> None:
    first = client.get("/v1/jobs/J000002", headers=admin)
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    cached = client.get("/v1/jobs/J000002", headers={**admin, "If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    other = client.get("/v1/jobs/J000003", headers={**admin, "If-None-Match": etag})
    assert other.status_code == 200
    narrowed = client.get("/v1/jobs/J000002?fields=job_number", headers=admin)
    assert narrowed.headers["etag"] != etag  # another representation, another validator


def test_request_id_is_echoed_or_generated(client: TestClient[Any], admin: dict[str, str]) -> None:
    echoed = client.get("/v1/jobs?limit=1", headers={**admin, "X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = client.get("/v1/nowhere")
    assert len(generated.headers["x-request-id"]) == 32
    assert generated.json()["request_id"] == generated.headers["x-request-id"]
    hostile = client.get("/v1/jobs?limit=1", headers={**admin, "X-Request-ID": "x" * 500})
    assert hostile.headers["x-request-id"] != "x" * 500
