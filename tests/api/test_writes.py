"""Writes over HTTP: validated, all-or-nothing, race-safe, idempotent and audited."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from gateway import create_app
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import Mapping, load_mapping, parse_mapping
from tests.conftest import TokenFactory, demo_environ

NEW_JOB = {
    "job_number": "J900001",
    "customer_id": "C0001",
    "item_number": "BRKT-00001",
    "status": "on_hold",
    "ordered_at": "2026-11-26T10:00:00Z",
    "due_date": "2026-12-15",
    "rush": True,
    "quantity": 12.5,
    "priority": False,
    "notes": "from the API",
}


def checksum(db: Path, table: str = "JOBMAST") -> str:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def stored(db: Path, job_number: str) -> tuple[Any, ...] | None:
    with sqlite3.connect(db) as conn:
        # The columns the jobs resource maps (PAIDFL/PAIDDT belong to job_invoices, written by Xero webhooks).
        columns = "JOBNO, CUSTNO, ITEMNO, JSTAT, ORDDT, ORDTM, DUEDT, RUSHFL, QTY, PRIO, NOTES, DELFLG"
        return conn.execute(f"SELECT {columns} FROM JOBMAST WHERE JOBNO = ?", (job_number.ljust(10),)).fetchone()


def _client(mapping: Mapping) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(mapping)) as client:
        yield client


@pytest.fixture
def writer(writable_db: Path) -> Iterator[TestClient[Any]]:
    yield from _client(load_mapping(DEMO_MAPPING_PATH, demo_environ(writable_db)))


@pytest.fixture
def app_headers(token: TokenFactory) -> dict[str, str]:
    scopes = ("jobs:read", "jobs:read:all", "jobs:write", "jobs:release")
    return {"Authorization": f"Bearer {token(*scopes, sub='planner-app')}"}


def test_create_encodes_api_values_into_legacy_form(
    writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]
) -> None:
    response = writer.post("/v1/jobs", json=NEW_JOB, headers=app_headers)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/v1/jobs/J900001"
    assert response.json() == {**NEW_JOB, "quantity": 12.5}
    assert stored(writable_db, "J900001") == (
        "J900001   ", "C0001   ", "BRKT-00001     ", "H", 20261126, 100000, 20261215, "Y", 1250, 0, "from the API", "N",
    )  # fmt: skip
    again = writer.get("/v1/jobs/J900001", headers=app_headers)
    assert again.headers["etag"] == response.headers["etag"]


@pytest.mark.parametrize(
    ("change", "field", "phrase"),
    [
        ({"status": "cancelled"}, "status", "not one of"),
        ({"due_date": "2026-02-30"}, "due_date", "ISO 8601 date"),
        ({"quantity": 1.234}, "quantity", "more than 2 decimals"),
        ({"customer_id": "C000000001"}, "customer_id", "longer"),
        ({"rush": "yes"}, "rush", "true or false"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"ordered_at": "2026-11-26T10:00:00"}, "ordered_at", "offset"),
        ({"quantity": None}, "quantity", "cannot be null"),
    ],
)
def test_bad_values_are_422_and_nothing_is_written(
    writer: TestClient[Any],
    writable_db: Path,
    app_headers: dict[str, str],
    change: dict[str, Any],
    field: str,
    phrase: str,
) -> None:
    before = checksum(writable_db)
    response = writer.post("/v1/jobs", json={**NEW_JOB, **change}, headers=app_headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = {e["field"]: e["detail"] for e in response.json()["errors"]}
    assert phrase in errors[field], errors
    assert checksum(writable_db) == before


def test_missing_required_fields_are_listed(
    writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]
) -> None:
    before = checksum(writable_db)
    response = writer.post("/v1/jobs", json={"job_number": "J900002"}, headers=app_headers)
    assert response.status_code == 422
    missing = {e["field"] for e in response.json()["errors"] if "required" in e["detail"]}
    assert {"customer_id", "item_number", "status", "ordered_at", "rush", "quantity", "priority"} <= missing
    assert "due_date" not in missing and "notes" not in missing  # sentinels / NULL stand for "none"
    assert checksum(writable_db) == before


def test_duplicate_key_is_409_without_driver_text(writer: TestClient[Any], app_headers: dict[str, str]) -> None:
    response = writer.post("/v1/jobs", json={**NEW_JOB, "job_number": "J000001"}, headers=app_headers)
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert "JOBMAST" not in response.text and "sqlite" not in response.text.lower()


def test_bulk_create_is_all_or_nothing(writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]) -> None:
    before = checksum(writable_db)
    rows = [{**NEW_JOB, "job_number": f"J9100{i:02d}"} for i in range(5)]
    rows[3]["status"] = "cancelled"
    response = writer.post("/v1/jobs", json=rows, headers=app_headers)
    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(3, "status")]
    assert checksum(writable_db) == before
    rows[3]["status"] = "planned"
    rows[4]["job_number"] = "J000001"  # passes validation, fails on the duplicate key inside the transaction
    assert writer.post("/v1/jobs", json=rows, headers=app_headers).status_code == 409
    assert checksum(writable_db) == before
    rows.pop()
    created = writer.post("/v1/jobs", json=rows, headers=app_headers)
    assert created.status_code == 201 and len(created.json()["data"]) == 4
    assert all(stored(writable_db, r["job_number"]) for r in rows)


def test_bulk_partial_commits_the_good_rows(
    writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]
) -> None:
    rows = [
        {**NEW_JOB, "job_number": "J920001"},
        {**NEW_JOB, "job_number": "J920002", "status": "cancelled"},
        {**NEW_JOB, "job_number": "J000001"},
        {**NEW_JOB, "job_number": "J920004"},
    ]
    response = writer.post("/v1/jobs?partial=true", json=rows, headers=app_headers)
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == [201, 422, 409, 201]
    assert stored(writable_db, "J920001") and stored(writable_db, "J920004")
    assert stored(writable_db, "J920002") is None


def test_bulk_partial_takes_only_true_or_false_and_writes_nothing_otherwise(
    writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]
) -> None:
    """``partial=yes`` is neither all-or-nothing nor partial: a 400 naming it, and nothing written."""
    before = checksum(writable_db)
    rows = [{**NEW_JOB, "job_number": "J921001"}, {**NEW_JOB, "job_number": "J921002", "status": "cancelled"}]
    for value in ("yes", "True", "1", ""):
        response = writer.post(f"/v1/jobs?partial={value}", json=rows, headers=app_headers)
        assert response.status_code == 400, value
        assert [e["parameter"] for e in response.json()["errors"]] == ["partial"]
    assert checksum(writable_db) == before
    assert writer.post("/v1/jobs?partial=false", json=rows, headers=app_headers).status_code == 422


def test_bulk_over_the_limit_is_413(writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]) -> None:
    before = checksum(writable_db)
    rows = [{**NEW_JOB, "job_number": f"J93{i:04d}"} for i in range(101)]
    response = writer.post("/v1/jobs", json=rows, headers=app_headers)
    assert response.status_code == 413 and response.headers["content-type"].startswith("application/problem+json")
    assert checksum(writable_db) == before


def test_patch_touches_only_the_named_columns(
    writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]
) -> None:
    writer.get("/v1/jobs/J000002", headers=app_headers)  # a client reads the row ...
    with sqlite3.connect(writable_db) as conn:  # ... meanwhile the legacy system changes another column
        conn.execute("UPDATE JOBMAST SET NOTES = 'changed by the old system' WHERE JOBNO = 'J000002   '")
    response = writer.patch("/v1/jobs/J000002", json={"rush": False}, headers=app_headers)
    assert response.status_code == 200
    row = stored(writable_db, "J000002")
    assert row is not None and row[7] == "N" and row[10] == "changed by the old system"


def test_if_match_prevents_the_lost_update(
    writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]
) -> None:
    etag = writer.get("/v1/jobs/J000003", headers=app_headers).headers["etag"]
    first = writer.patch("/v1/jobs/J000003", json={"notes": "first"}, headers={**app_headers, "If-Match": etag})
    assert first.status_code == 200 and first.headers["etag"] != etag
    before = checksum(writable_db)
    second = writer.patch("/v1/jobs/J000003", json={"notes": "second"}, headers={**app_headers, "If-Match": etag})
    assert second.status_code == 412
    assert checksum(writable_db) == before
    assert writer.get("/v1/jobs/J000003", headers=app_headers).json()["notes"] == "first"


def test_if_match_under_a_real_race_lets_exactly_one_writer_win(writable_db: Path, app_headers: dict[str, str]) -> None:
    mapping = load_mapping(DEMO_MAPPING_PATH, demo_environ(writable_db))
    with TestClient(create_app(mapping)) as client:
        etag = client.get("/v1/jobs/J000004", headers=app_headers).headers["etag"]
        statuses: list[int] = []
        barrier = threading.Barrier(8)

        def write(n: int) -> None:
            barrier.wait()
            headers = {**app_headers, "If-Match": etag}
            statuses.append(
                client.patch("/v1/jobs/J000004", json={"notes": f"writer {n}"}, headers=headers).status_code
            )

        threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(statuses) == [200] + [412] * 7


def test_if_match_can_be_required(writable_db: Path, app_headers: dict[str, str]) -> None:
    text = DEMO_MAPPING_PATH.read_text().replace("api:\n", "api:\n  require_if_match: true\n", 1)
    mapping = parse_mapping(text, environ=demo_environ(writable_db))
    before = checksum(writable_db)
    with TestClient(create_app(mapping)) as client:
        response = client.patch("/v1/jobs/J000005", json={"rush": True}, headers=app_headers)
        assert response.status_code == 428
        assert client.delete("/v1/jobs/J000005", headers=app_headers).status_code == 428
    assert checksum(writable_db) == before


def test_delete_is_the_mapped_soft_delete(
    writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]
) -> None:
    assert writer.delete("/v1/jobs/J000006", headers=app_headers).status_code == 204
    assert writer.get("/v1/jobs/J000006", headers=app_headers).status_code == 404
    row = stored(writable_db, "J000006")
    assert row is not None and row[-1] == "Y"  # the row is still there, flagged as the old system does
    assert writer.delete("/v1/jobs/J000006", headers=app_headers).status_code == 404


def test_resources_without_writes_refuse_them(
    writer: TestClient[Any], admin: dict[str, str], writable_db: Path
) -> None:
    before = checksum(writable_db, "CUSTMAST")
    assert writer.post("/v1/customers", json={"customer_id": "C9"}, headers=admin).status_code == 405
    assert writer.delete("/v1/customers/C0001", headers=admin).status_code == 405
    assert writer.delete("/v1/operations/J000001,10", headers=admin).status_code == 405
    assert checksum(writable_db, "CUSTMAST") == before


def test_write_scope_and_row_filter_apply(
    writer: TestClient[Any], writable_db: Path, token: TokenFactory, demo_db_path: Path
) -> None:
    reader = {"Authorization": f"Bearer {token('jobs:read')}"}
    assert writer.post("/v1/jobs", json=NEW_JOB, headers=reader).status_code == 403
    portal = {"Authorization": f"Bearer {token('jobs:read', 'jobs:write', customer_id='C0001')}"}
    with sqlite3.connect(writable_db) as conn:
        other = conn.execute("SELECT TRIM(JOBNO) FROM JOBMAST WHERE CUSTNO <> 'C0001   ' AND DELFLG <> 'Y'").fetchone()[
            0
        ]
    before = checksum(writable_db)
    assert writer.patch(f"/v1/jobs/{other}", json={"rush": True}, headers=portal).status_code == 404
    assert writer.delete(f"/v1/jobs/{other}", headers=portal).status_code == 404
    foreign = writer.post("/v1/jobs", json={**NEW_JOB, "customer_id": "C0002"}, headers=portal)
    assert foreign.status_code == 403
    assert checksum(writable_db) == before
    own = writer.post("/v1/jobs", json=NEW_JOB, headers=portal)
    assert own.status_code == 201


def test_idempotency_key_replays_the_first_response(
    writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]
) -> None:
    headers = {**app_headers, "Idempotency-Key": "order-42"}
    first = writer.post("/v1/jobs", json=NEW_JOB, headers=headers)
    assert first.status_code == 201
    before = checksum(writable_db)
    replay = writer.post("/v1/jobs", json=NEW_JOB, headers=headers)
    assert (replay.status_code, replay.content) == (first.status_code, first.content)
    assert replay.headers["idempotent-replayed"] == "true"
    assert checksum(writable_db) == before
    reused = writer.post("/v1/jobs", json={**NEW_JOB, "job_number": "J900009"}, headers=headers)
    assert reused.status_code == 422 and reused.json()["type"] == "/problems/idempotency-key-reused"
    assert stored(writable_db, "J900009") is None


def test_twenty_parallel_posts_with_one_key_create_one_row(writable_db: Path, app_headers: dict[str, str]) -> None:
    mapping = load_mapping(DEMO_MAPPING_PATH, demo_environ(writable_db))
    with TestClient(create_app(mapping)) as client:
        barrier = threading.Barrier(20)
        responses: list[Any] = []

        def post() -> None:
            barrier.wait()
            headers = {**app_headers, "Idempotency-Key": "same-key"}
            responses.append(client.post("/v1/jobs", json={**NEW_JOB, "job_number": "J950000"}, headers=headers))

        threads = [threading.Thread(target=post) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with sqlite3.connect(writable_db) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM JOBMAST WHERE JOBNO = 'J950000   '").fetchone()
    assert count == 1
    assert {r.status_code for r in responses} == {201}  # the duplicates waited and got the same answer
    assert len({r.content for r in responses}) == 1


def test_action_runs_with_bound_parameters_and_is_idempotent(
    writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]
) -> None:
    with sqlite3.connect(writable_db) as conn:
        held = conn.execute("SELECT TRIM(JOBNO) FROM JOBMAST WHERE JSTAT = 'H' AND DELFLG <> 'Y'").fetchone()[0]
    headers = {**app_headers, "Idempotency-Key": f"release-{held}"}
    first = writer.post(f"/v1/jobs/{held}/actions/release", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["result"] == {"affected": 1} and first.json()["data"]["status"] == "released"
    replay = writer.post(f"/v1/jobs/{held}/actions/release", headers=headers)
    assert replay.content == first.content and replay.headers["idempotent-replayed"] == "true"
    no_scope = {"Authorization": app_headers["Authorization"].replace("jobs:release", "")}
    assert writer.post(f"/v1/jobs/{held}/actions/unknown", headers=app_headers).status_code == 404
    assert no_scope  # the scope test below uses a token without jobs:release


def test_action_needs_its_own_scope(writer: TestClient[Any], token: TokenFactory, writable_db: Path) -> None:
    headers = {"Authorization": f"Bearer {token('jobs:read', 'jobs:read:all', 'jobs:write')}"}
    before = checksum(writable_db)
    response = writer.post("/v1/jobs/J000001/actions/release", headers=headers)
    assert response.status_code == 403 and 'scope="jobs:release"' in response.headers["www-authenticate"]
    assert checksum(writable_db) == before


def test_failing_statement_inside_an_action_leaves_nothing_behind(
    writable_db: Path, app_headers: dict[str, str]
) -> None:
    # Release the job, then add its first operation again: JOBOPS(JOBNO, OPSEQ) is unique, so the
    # second statement fails and the first must be rolled back with it.
    action = """
          release_and_copy:
            sql:
              - "UPDATE JOBMAST SET JSTAT = 'R' WHERE JOBNO = :JobNo"
              - "INSERT INTO JOBOPS (JOBNO, OPSEQ, WRKCTR, OPDESC, STDHRS, OPSTAT, STRDT, STRTM, DONEFL)
                 SELECT JOBNO, OPSEQ, WRKCTR, OPDESC, STDHRS, OPSTAT, STRDT, STRTM, DONEFL
                 FROM JOBOPS WHERE JOBNO = :JobNo"
            params: {JobNo: job_number}
            scope: jobs:release
"""
    text = DEMO_MAPPING_PATH.read_text().replace("        actions:\n", "        actions:" + action, 1)
    mapping = parse_mapping(text, environ=demo_environ(writable_db))
    before = (checksum(writable_db), checksum(writable_db, "JOBOPS"))
    with TestClient(create_app(mapping)) as client:
        response = client.post("/v1/jobs/J000007/actions/release_and_copy", headers=app_headers)
    assert response.status_code == 409
    assert "JOBOPS" not in response.text and "UNIQUE" not in response.text
    assert (checksum(writable_db), checksum(writable_db, "JOBOPS")) == before


def test_audit_trail_holds_before_and_after(
    writer: TestClient[Any], admin: dict[str, str], app_headers: dict[str, str], token: TokenFactory
) -> None:
    writer.post("/v1/jobs", json=NEW_JOB, headers={**app_headers, "X-Request-ID": "req-create"})
    writer.patch("/v1/jobs/J900001", json={"status": "released", "rush": True}, headers=app_headers)
    writer.delete("/v1/jobs/J900001", headers=app_headers)
    response = writer.get("/admin/audit?resource=jobs&key=J900001", headers=admin)
    assert response.status_code == 200
    entries = response.json()["data"]
    assert [e["action"] for e in entries] == ["delete", "update", "create"]
    delete, update, create = entries
    assert update["before"] == {"status": "on_hold"} and update["after"] == {"status": "released"}
    assert create["before"] is None and create["after"]["quantity"] == 12.5
    assert create["subject"] == "planner-app" and create["request_id"] == "req-create"
    assert delete["after"] is None and delete["before"]["job_number"] == "J900001"
    assert writer.get("/admin/audit", headers=app_headers).status_code == 403


def test_hidden_fields_are_not_written_to_the_audit(
    writable_db: Path, admin: dict[str, str], token: TokenFactory
) -> None:
    notes = '          notes: {column: NOTES, type: string, transform: trim, null_if: [""], nullable: true'
    text = DEMO_MAPPING_PATH.read_text().replace(notes + "}", notes + ", scope: notes:read}")
    assert "scope: notes:read" in text
    mapping = parse_mapping(text, environ=demo_environ(writable_db))
    headers = {"Authorization": f"Bearer {token('admin', sub='root')}"}
    with TestClient(create_app(mapping)) as client:
        client.patch("/v1/jobs/J000008", json={"notes": "secret plan", "rush": True}, headers=headers)
        entries = client.get("/admin/audit?key=J000008", headers=admin).json()["data"]
    assert entries and "notes" not in entries[0]["after"] and "secret plan" not in str(entries)


def test_non_ascii_key_gets_a_percent_encoded_location(
    writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]
) -> None:
    """``J€SEC1`` was inserted and audited, then building Location failed: a 500, and the retry a 409."""
    response = writer.post("/v1/jobs", json={**NEW_JOB, "job_number": "J€SEC1"}, headers=app_headers)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/v1/jobs/J%E2%82%ACSEC1"
    followed = writer.get(response.headers["location"], headers=app_headers)
    assert followed.status_code == 200 and followed.json()["job_number"] == "J€SEC1"
    assert stored(writable_db, "J€SEC1") is not None
    audit = writer.get("/admin/audit?resource=jobs&action=create", headers=app_headers | _admin(writer))
    assert [e["key"] for e in audit.json()["data"]] == ["J€SEC1"]


def _admin(client: TestClient[Any]) -> dict[str, str]:
    from gateway.cli import mint_token

    auth = client.app.state["ctx"].mapping.auth
    token = mint_token(auth.hs256_secret, subject="admin", scopes=["admin"], claims={}, ttl_s=600,
                       issuer=auth.issuer, audience=auth.audience)  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


def test_a_committed_write_is_never_answered_with_500(
    writer: TestClient[Any], writable_db: Path, app_headers: dict[str, str]
) -> None:
    """The audit trail failing after the legacy commit must not hide that the row was written."""
    state_db = writable_db.with_name(writable_db.stem + "-state.db")
    with sqlite3.connect(state_db) as conn:  # the state store breaks for real: its audit table is gone
        conn.execute("DROP TABLE audit")
    response = writer.post("/v1/jobs", json=NEW_JOB, headers=app_headers)
    assert response.status_code == 201, response.text
    assert stored(writable_db, "J900001") is not None
    changed = writer.patch("/v1/jobs/J900001", json={"notes": "still answered"}, headers=app_headers)
    assert changed.status_code == 200, changed.text
    assert writer.post("/v1/jobs/J900001/actions/release", headers=app_headers).status_code == 200
