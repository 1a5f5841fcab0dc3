"""Keyset pagination stays correct while other clients insert rows between page requests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from litestar.testing import TestClient

from gateway import create_app
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import load_mapping
from tests.conftest import demo_environ


def _insert_job(db: Path, job_number: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO JOBMAST (JOBNO, CUSTNO, ITEMNO, JSTAT, ORDDT, ORDTM, DUEDT, RUSHFL, QTY, PRIO, NOTES, DELFLG)"
            " VALUES (?, 'C0001   ', 'BRKT-00001     ', 'R', 20261126, 120000, 0, 'N', 100, 0, '', 'N')",
            (job_number.ljust(10),),
        )


def test_pages_neither_skip_nor_repeat_rows_under_concurrent_inserts(writable_db: Path, admin: dict[str, str]) -> None:
    mapping = load_mapping(DEMO_MAPPING_PATH, demo_environ(writable_db))
    with sqlite3.connect(writable_db) as conn:
        before = {r[0] for r in conn.execute("SELECT TRIM(JOBNO) FROM JOBMAST WHERE DELFLG <> 'Y'")}
    seen: list[str] = []
    inserted_behind, inserted_ahead = [], []
    with TestClient(create_app(mapping)) as client:
        url = "/v1/jobs?limit=150&sort=job_number&fields=job_number"
        page = 0
        while url:
            response = client.get(url, headers=admin)
            assert response.status_code == 200
            rows = [r["job_number"] for r in response.json()["data"]]
            seen.extend(rows)
            # Between requests another client adds one job behind the reader's position and one ahead.
            behind, ahead = f"J000000{page:03d}", f"JZ{page:05d}"
            _insert_job(writable_db, behind)
            _insert_job(writable_db, ahead)
            inserted_behind.append(behind)
            inserted_ahead.append(ahead)
            page += 1
            url = response.links.get("next", {}).get("url", "")  # by rel: v1 links to v2 too
    assert page > 10  # the walk really crossed many page boundaries
    assert len(seen) == len(set(seen)), "a row was served twice"
    assert before <= set(seen), "a row that existed throughout was skipped"
    assert not set(inserted_behind) & set(seen)  # behind the cursor: not seen, and nothing shifted
    assert set(inserted_ahead[:-1]) <= set(seen)  # ahead of the cursor: picked up by later pages
    assert seen == sorted(seen)


def test_offset_paging_shifts_under_inserts_which_is_why_cursor_is_the_default(
    writable_db: Path, admin: dict[str, str]
) -> None:
    mapping = load_mapping(DEMO_MAPPING_PATH, demo_environ(writable_db))
    with TestClient(create_app(mapping)) as client:
        first = client.get("/v1/jobs?limit=50&offset=0&sort=job_number&fields=job_number", headers=admin).json()
        _insert_job(writable_db, "J0000000A")
        second = client.get("/v1/jobs?limit=50&offset=50&sort=job_number&fields=job_number", headers=admin).json()
        assert first["data"][-1] == second["data"][0]  # the documented cost of offset paging
        cursor = client.get("/v1/jobs?limit=50&sort=job_number&fields=job_number", headers=admin).json()
        _insert_job(writable_db, "J0000000B")
        nxt = client.get(
            f"/v1/jobs?limit=50&sort=job_number&fields=job_number&cursor={cursor['next_cursor']}", headers=admin
        ).json()
        assert cursor["data"][-1] != nxt["data"][0]
