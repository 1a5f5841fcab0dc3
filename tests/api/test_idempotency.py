"""Idempotency keys against hostile and unlucky callers: tenants sharing a subject, a state store
that fails right after the legacy commit, claims left behind by a crash, duplicates that wait.

Failures are injected into the real state store (SQLite triggers that make its writes fail the
way a full disk or a lost server does), never by replacing our own classes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from litestar.testing import TestClient

from gateway import create_app
from gateway.auth.principal import Principal
from gateway.idempotency import identity_claims, owner_of, request_fingerprint
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import Mapping, parse_mapping
from sync.state import StateDatabase
from sync.state.idempotency import IdempotencyStore, StoredResponse
from tests.conftest import JWT_SECRET, TokenFactory, demo_environ

# Every run adds 1.00 to the job's quantity: a second run of the same request shows.
BUMP = """
          bump:
            sql: "UPDATE JOBMAST SET QTY = QTY + 100 WHERE JOBNO = :JobNo"
            params: {JobNo: job_number}
            scope: jobs:release
"""
JOB = "J000007"


def bump_mapping(db: Path, *, lease_s: float = 30.0, pool_size: int = 5) -> Mapping:
    text = DEMO_MAPPING_PATH.read_text().replace("        actions:\n", "        actions:" + BUMP, 1)
    text = text.replace("  statement_timeout_s: 5\n", f"  statement_timeout_s: 5\n  pool_size: {pool_size}\n", 1)
    text = text.replace("api:\n", f"api:\n  idempotency_lease_s: {lease_s}\n", 1)
    return parse_mapping(text, environ=demo_environ(db))


def state_path(db: Path) -> Path:
    return db.with_name(db.stem + "-state.db")


def quantity(db: Path, job: str = JOB) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT QTY FROM JOBMAST WHERE JOBNO = ?", (job.ljust(10),)).fetchone()[0])


@contextmanager
def failing(state: Path, *triggers: str) -> Iterator[None]:
    """Make the state store refuse some writes (a real SQLite error through the real driver)."""
    conditions = {
        "audit": "BEFORE INSERT ON audit",
        "complete": "BEFORE UPDATE OF state ON idempotency_keys WHEN NEW.state = 'done'",
        "seal": "BEFORE UPDATE OF state ON idempotency_keys WHEN NEW.state = 'committing'",
    }
    with sqlite3.connect(state) as conn:
        for name in triggers:
            conn.execute(f"CREATE TRIGGER fail_{name} {conditions[name]} BEGIN SELECT RAISE(ABORT, 'disk I/O'); END")
    try:
        yield
    finally:
        with sqlite3.connect(state) as conn:
            for name in triggers:
                conn.execute(f"DROP TRIGGER fail_{name}")


@pytest.fixture
def releaser(token: TokenFactory) -> dict[str, str]:
    scopes = ("jobs:read", "jobs:read:all", "jobs:write", "jobs:release")
    return {"Authorization": f"Bearer {token(*scopes, sub='planner-app')}", "Idempotency-Key": "bump-1"}


def _customers_of_held_jobs(db: Path) -> tuple[tuple[str, str], str]:
    with sqlite3.connect(db) as conn:
        job, customer = conn.execute(
            "SELECT TRIM(JOBNO), TRIM(CUSTNO) FROM JOBMAST WHERE JSTAT = 'H' AND DELFLG <> 'Y'"
        ).fetchone()
        (other,) = conn.execute("SELECT TRIM(CUSTNO) FROM CUSTMAST WHERE TRIM(CUSTNO) <> ?", (customer,)).fetchone()
    return (job, customer), other


# -- item 1: a key belongs to the caller's whole identity ----------------------------------


def test_portal_customers_sharing_a_sub_never_get_each_others_replay(writable_db: Path, token: TokenFactory) -> None:
    (job, customer_a), customer_b = _customers_of_held_jobs(writable_db)
    scopes = ("jobs:read", "jobs:release")
    portal_a = {"Authorization": f"Bearer {token(*scopes, sub='portal', customer_id=customer_a)}"}
    portal_b = {"Authorization": f"Bearer {token(*scopes, sub='portal', customer_id=customer_b)}"}
    with TestClient(create_app(bump_mapping(writable_db))) as client:
        first = client.post(f"/v1/jobs/{job}/actions/release", headers={**portal_a, "Idempotency-Key": "k"})
        assert first.status_code == 200 and first.json()["data"]["customer_id"] == customer_a
        stolen = client.post(f"/v1/jobs/{job}/actions/release", headers={**portal_b, "Idempotency-Key": "k"})
        without_key = client.post(f"/v1/jobs/{job}/actions/release", headers=portal_b)
        replay = client.post(f"/v1/jobs/{job}/actions/release", headers={**portal_a, "Idempotency-Key": "k"})
    assert stolen.status_code == 404 == without_key.status_code, stolen.text
    assert "idempotent-replayed" not in stolen.headers and customer_a not in stolen.text
    assert replay.headers["idempotent-replayed"] == "true" and replay.content == first.content


def test_a_token_with_other_scopes_is_another_owner(token: TokenFactory, demo_mapping: Mapping) -> None:
    claims = identity_claims(demo_mapping)
    assert claims == {"customer_id"}

    def owner(*scopes: str, **extra: Any) -> str:
        raw = token(*scopes, sub="portal", **extra)
        return owner_of(Principal.from_claims(jwt.decode(raw, options={"verify_signature": False})), claims)

    assert owner("jobs:read", customer_id="C1") == owner("jobs:read", customer_id="C1")
    assert owner("jobs:read", customer_id="C1") != owner("jobs:read", customer_id="C2")
    assert owner("jobs:read", customer_id="C1") != owner("jobs:read", "costs:read", customer_id="C1")
    # A claim no row filter binds does not split one caller into many.
    assert owner("jobs:read", customer_id="C1") == owner("jobs:read", customer_id="C1", team="x")


def test_the_query_string_is_part_of_the_request(writable_db: Path, releaser: dict[str, str]) -> None:
    rows = [{"job_number": "J990001"}]  # invalid: an all-or-nothing bulk refuses it
    with TestClient(create_app(bump_mapping(writable_db))) as client:
        strict = client.post("/v1/jobs", json=rows, headers=releaser)
        partial = client.post("/v1/jobs?partial=true", json=rows, headers=releaser)
    assert strict.status_code == 422 and strict.json()["type"] != "/problems/idempotency-key-reused"
    assert partial.status_code == 422 and partial.json()["type"] == "/problems/idempotency-key-reused"


# -- item 2: never a second write, never a key locked for a day -----------------------------


def test_a_state_store_failing_after_the_commit_never_runs_the_write_twice(
    writable_db: Path, releaser: dict[str, str]
) -> None:
    before = quantity(writable_db)
    state = state_path(writable_db)
    with TestClient(create_app(bump_mapping(writable_db, lease_s=0.2))) as client:
        client.get("/v1/items?limit=1")  # the state store exists
        with failing(state, "audit", "complete"):
            first = client.post(f"/v1/jobs/{JOB}/actions/bump", headers=releaser)
            # The write committed, so the caller is told so, although neither its audit row nor its
            # answer reached the state store.
            assert first.status_code == 200, first.text
            assert quantity(writable_db) == before + 100
            retry = client.post(f"/v1/jobs/{JOB}/actions/bump", headers=releaser)
            assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
            assert retry.content == first.content
            # Another process sharing the store sees the key sealed, and refuses to guess.
            with TestClient(create_app(bump_mapping(writable_db, lease_s=0.2))) as other:
                elsewhere = other.post(f"/v1/jobs/{JOB}/actions/bump", headers=releaser)
            assert elsewhere.status_code == 409, elsewhere.text
            assert elsewhere.json()["type"] == "/problems/idempotency-outcome-unknown"
        # The store is back: the answer kept in memory reaches it, and every process replays it.
        assert client.post(f"/v1/jobs/{JOB}/actions/bump", headers=releaser).content == first.content
        with TestClient(create_app(bump_mapping(writable_db))) as other:
            again = other.post(f"/v1/jobs/{JOB}/actions/bump", headers=releaser)
        assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert quantity(writable_db) == before + 100


def test_a_state_store_failing_before_the_commit_writes_nothing_and_frees_the_key(
    writable_db: Path, releaser: dict[str, str]
) -> None:
    before = quantity(writable_db)
    with TestClient(create_app(bump_mapping(writable_db))) as client:
        client.get("/v1/items?limit=1")
        with failing(state_path(writable_db), "seal"):
            refused = client.post(f"/v1/jobs/{JOB}/actions/bump", headers=releaser)
        assert refused.status_code == 503 and quantity(writable_db) == before
        retried = client.post(f"/v1/jobs/{JOB}/actions/bump", headers=releaser)
        assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers
    assert quantity(writable_db) == before + 100


def _claim_elsewhere(mapping: Mapping, headers: dict[str, str], path: str, lease_s: float) -> tuple[Any, ...]:
    """A claim by another gateway process (that then stalls or dies): the store's own API, another instance."""
    raw = headers["Authorization"].removeprefix("Bearer ")
    principal = Principal.from_claims(jwt.decode(raw, JWT_SECRET, algorithms=["HS256"], audience="bridgehead"))
    owner = owner_of(principal, identity_claims(mapping))
    fingerprint = request_fingerprint("POST", path, b"", b"")
    store = IdempotencyStore(StateDatabase(mapping.state.url), 86400, lease_s)
    claim = store.claim(owner, headers["Idempotency-Key"], fingerprint)
    assert claim.outcome == "claimed" and claim.token is not None
    return store, owner, claim.token, fingerprint


def test_a_claim_left_by_a_crash_before_its_commit_expires_with_its_lease(
    writable_db: Path, releaser: dict[str, str]
) -> None:
    mapping = bump_mapping(writable_db)
    path = f"/v1/jobs/{JOB}/actions/bump"
    before = quantity(writable_db)
    with TestClient(create_app(mapping)) as client:
        _claim_elsewhere(mapping, releaser, path, lease_s=0.0)  # that process died at once
        response = client.post(path, headers=releaser)
    assert response.status_code == 200, response.text
    assert quantity(writable_db) == before + 100


def test_a_crash_between_commit_and_answer_is_reported_never_rerun(writable_db: Path, releaser: dict[str, str]) -> None:
    mapping = bump_mapping(writable_db)
    path = f"/v1/jobs/{JOB}/actions/bump"
    before = quantity(writable_db)
    with TestClient(create_app(mapping)) as client:
        store, owner, held, _ = _claim_elsewhere(mapping, releaser, path, lease_s=0.0)
        store.seal(owner, releaser["Idempotency-Key"], held)  # ... committed, then died
        response = client.post(path, headers=releaser)
    assert response.status_code == 409 and response.json()["type"] == "/problems/idempotency-outcome-unknown"
    assert "retry-after" not in response.headers
    assert quantity(writable_db) == before


def test_a_duplicate_waits_off_the_database_pool_and_gets_the_first_answer(
    writable_db: Path, releaser: dict[str, str]
) -> None:
    mapping = bump_mapping(writable_db, pool_size=1)  # one database worker: a sleeper in it would stall all
    path = f"/v1/jobs/{JOB}/actions/bump"
    before = quantity(writable_db)
    with TestClient(create_app(mapping)) as client:
        client.get("/v1/items?limit=1")
        store, owner, held, fingerprint = _claim_elsewhere(mapping, releaser, path, lease_s=30.0)
        answers: dict[str, Any] = {}
        duplicate = threading.Thread(target=lambda: answers.update(dup=client.post(path, headers=releaser)))
        duplicate.start()
        reader = threading.Thread(target=lambda: answers.update(read=client.get("/v1/items?limit=1")))
        reader.start()
        reader.join(timeout=5)
        assert not reader.is_alive(), "a read waited behind a duplicate that sleeps in the database pool"
        assert answers["read"].status_code == 200 and duplicate.is_alive()
        first = StoredResponse(200, {"content-type": "application/json"}, b'{"from": "the first request"}')
        store.complete(owner, releaser["Idempotency-Key"], held, fingerprint, first)
        duplicate.join(timeout=10)
    assert answers["dup"].status_code == 200 and answers["dup"].content == first.body
    assert answers["dup"].headers["idempotent-replayed"] == "true"
    assert quantity(writable_db) == before


def test_a_duplicate_arriving_after_a_release_claims_the_key(writable_db: Path, releaser: dict[str, str]) -> None:
    mapping = bump_mapping(writable_db)
    path = f"/v1/jobs/{JOB}/actions/bump"
    before = quantity(writable_db)
    with TestClient(create_app(mapping)) as client:
        store, owner, held, _ = _claim_elsewhere(mapping, releaser, path, lease_s=30.0)
        answers: dict[str, Any] = {}
        duplicate = threading.Thread(target=lambda: answers.update(dup=client.post(path, headers=releaser)))
        duplicate.start()
        duplicate.join(timeout=0.3)
        store.release(owner, releaser["Idempotency-Key"], held)  # the first request failed before committing
        duplicate.join(timeout=10)
    assert answers["dup"].status_code == 200 and "idempotent-replayed" not in answers["dup"].headers
    assert quantity(writable_db) == before + 100


# -- item 10: a portal cannot learn whose a key is --------------------------------------------


def test_a_portal_posting_another_customers_key_learns_nothing(writable_db: Path, token: TokenFactory) -> None:
    with sqlite3.connect(writable_db) as conn:
        foreign, owner = conn.execute(
            "SELECT TRIM(JOBNO), TRIM(CUSTNO) FROM JOBMAST WHERE CUSTNO <> 'C0001   ' AND DELFLG <> 'Y'"
        ).fetchone()
    portal = {"Authorization": f"Bearer {token('jobs:read', 'jobs:write', customer_id='C0001')}"}
    job = {
        "item_number": "BRKT-00001",
        "ordered_at": "2026-11-26T10:00:00Z",
        "quantity": 1,
        "status": "on_hold",
        "rush": False,
        "priority": False,
    }

    def answer(response: Any) -> tuple[int, str, str]:
        body = response.json()
        return response.status_code, body["type"], body["detail"]

    with TestClient(create_app(bump_mapping(writable_db))) as client:
        unknown_key = client.post(
            "/v1/jobs", json={**job, "job_number": "J999990", "customer_id": owner}, headers=portal
        )
        taken_key = client.post("/v1/jobs", json={**job, "job_number": foreign, "customer_id": owner}, headers=portal)
        as_own = client.post("/v1/jobs", json={**job, "job_number": foreign, "customer_id": "C0001"}, headers=portal)
    assert answer(taken_key) == answer(unknown_key) == answer(as_own)
    assert taken_key.status_code == 403
    assert owner not in as_own.text and foreign not in taken_key.json()["detail"]


def test_a_write_that_outlives_its_lease_is_rolled_back_when_a_retry_took_the_key(
    writable_db: Path, releaser: dict[str, str]
) -> None:
    mapping = bump_mapping(writable_db, lease_s=0.3)
    path = f"/v1/jobs/{JOB}/actions/bump"
    before = quantity(writable_db)
    answers: list[Any] = []
    with TestClient(create_app(mapping)) as client:
        client.get("/v1/items?limit=1")
        blocker = sqlite3.connect(writable_db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another program holds the legacy table: the write waits
        try:
            slow = threading.Thread(target=lambda: answers.append(client.post(path, headers=releaser)))
            slow.start()
            slow.join(timeout=0.8)  # the first request's lease runs out while it waits
            retry = threading.Thread(target=lambda: answers.append(client.post(path, headers=releaser)))
            retry.start()
            retry.join(timeout=0.5)
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        slow.join(timeout=10)
        retry.join(timeout=10)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 409)
    assert "lease" in refused.json()["detail"] and "nothing was written" in refused.json()["detail"]
    assert quantity(writable_db) == before + 100
