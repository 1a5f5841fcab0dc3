"""Writes through the migration phases: dual_write mirrors to core with drift detection, cutover writes
core and back to the legacy table; checks, row filters, idempotency and audit are the same in every phase.

SQLite legacy (a private copy of a small demo) -> PostgreSQL core, copied once for the module.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from db_backends import _SUFFIX, JWT_SECRET, PG_URL, _odbc_admin, require_driver, require_port
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.cli import mint_token
from legacy_adapters.database import Database
from legacy_adapters.demo import MIGRATION_MAPPING_PATH, create_demo_database
from legacy_adapters.mapping import Mapping, load_mapping
from legacy_adapters.migration.copy import copy_rows
from legacy_adapters.migration.phases import with_phase
from legacy_adapters.migration.routing import RoutedReader, open_databases
from legacy_adapters.query.resource import bind_version
from sync.state import StateDatabase

pytestmark = pytest.mark.odbc

CORE_DATABASE = f"bridgehead_core_writes{_SUFFIX}"
SECRET = b"w" * 32


def _headers(*scopes: str, **claims: Any) -> dict[str, str]:
    token = mint_token(JWT_SECRET, subject="writer", scopes=list(scopes), claims=claims, ttl_s=4 * 3600,
                       issuer="bridgehead-demo", audience="bridgehead")  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


WRITER = _headers("jobs:write", "jobs:read:all", "jobs:release")
PORTAL = _headers("jobs:write", "jobs:read", customer_id="C0002")


def job(number: str, **change: Any) -> dict[str, Any]:
    return {
        "job_number": number, "customer_id": "C0001", "item_number": "BRKT-00001", "status": "on_hold",
        "ordered_at": "2026-11-26T10:00:00Z", "due_date": "2026-12-15", "rush": True, "quantity": 12.5,
        "priority": False, "notes": "from the API", **change,
    }  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mapping, Path, sa.Engine]]:
    tmp = tmp_path_factory.mktemp("migration-writes")
    demo = tmp / "demo.db"
    create_demo_database(demo, rows=120)
    require_driver("PostgreSQL Unicode")
    core = sa.make_url(PG_URL).set(database=CORE_DATABASE)
    require_port(core, 5432)
    _odbc_admin(core, f'CREATE DATABASE "{CORE_DATABASE}"')
    environ = {
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_DB_URL": f"sqlite:///{demo}",
        "BRIDGEHEAD_CORE_URL": core.render_as_string(hide_password=False),
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{tmp / 'state.db'}",
    }
    mapping = load_mapping(MIGRATION_MAPPING_PATH, environ)
    reader = RoutedReader(
        mapping, open_databases(mapping, Database(mapping.database)), {"v1": bind_version(mapping, "v1")}
    )
    for route in reader.routes.values():
        copy_rows(route, reader.database_of(None), reader.database_of("core"), restart=True)
    reader.dispose()
    reader.database.dispose()
    engine = sa.create_engine(core)
    yield mapping, demo, engine
    engine.dispose()


@pytest.fixture
def phase_client(setup: tuple[Mapping, Path, sa.Engine], tmp_path: Path) -> Iterator[Any]:
    mapping = setup[0]
    opened: list[TestClient[Any]] = []

    def make(phase: str) -> TestClient[Any]:
        app = create_app(with_phase(mapping, phase), cursor_secret=SECRET,  # type: ignore[arg-type]
                         state=StateDatabase(f"sqlite:///{tmp_path / 'state.db'}"))  # fmt: skip
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def legacy_row(demo: Path, number: str) -> tuple[Any, ...] | None:
    with sqlite3.connect(demo) as conn:
        return conn.execute(
            "SELECT JSTAT, QTY, DELFLG, NOTES FROM JOBMAST WHERE JOBNO = ?", (number.ljust(10),)
        ).fetchone()


def core_row(engine: sa.Engine, number: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT status, quantity, notes FROM jobs WHERE job_number = :n"), {"n": number}
        ).first()


def hidden_in_core(engine: sa.Engine, number: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT bh_hidden FROM jobs WHERE job_number = :n"), {"n": number}).scalar()


def test_soft_deleted_keys_stay_taken_in_every_phase(setup: Any, phase_client: Any) -> None:
    """The copy keeps rows the legacy where hides: re-creating a soft-deleted job is 409 on both sides."""
    _, demo, engine = setup
    with sqlite3.connect(demo) as conn:
        deleted = conn.execute("SELECT trim(JOBNO) FROM JOBMAST WHERE DELFLG = 'Y' ORDER BY 1").fetchone()[0]
    assert hidden_in_core(engine, deleted) is True
    answers = set()
    for phase in ("legacy", "cutover"):
        client = phase_client(phase)
        assert client.get(f"/v1/jobs/{deleted}", headers=WRITER).status_code == 404
        again = client.post("/v1/jobs", json=job(deleted), headers={**WRITER, "X-Request-ID": "same"})
        answers.add((again.status_code, again.content))
    assert len(answers) == 1 and next(iter(answers))[0] == 409


def test_dual_write_mirrors_every_write_to_core(setup: Any, phase_client: Any) -> None:
    _, demo, engine = setup
    client = phase_client("dual_write")
    created = client.post("/v1/jobs", json=job("J800001"), headers=WRITER)
    assert created.status_code == 201, created.text
    assert legacy_row(demo, "J800001")[:3] == ("H", 1250, "N")
    assert tuple(core_row(engine, "J800001")) == ("on_hold", pytest.approx(12.5), "from the API")
    changed = client.patch("/v1/jobs/J800001", json={"quantity": 7.25, "notes": None},
                           headers={**WRITER, "If-Match": created.headers["etag"]})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert tuple(core_row(engine, "J800001"))[1:] == (pytest.approx(7.25), None)
    released = client.post("/v1/jobs/J800001/actions/release", headers=WRITER)
    assert released.status_code == 200 and core_row(engine, "J800001")[0] == "released"
    assert client.delete("/v1/jobs/J800001", headers=WRITER).status_code == 204
    assert legacy_row(demo, "J800001")[2] == "Y" and hidden_in_core(engine, "J800001") is True
    counters = client.get("/health/migration").json()["resources"]["v1.jobs"]["counters"]
    assert counters["mirrored"] == 4 and counters["drift"] == 0 and counters["mirror_failed"] == 0


def test_dual_write_reports_drift_with_key_and_fields(setup: Any, phase_client: Any) -> None:
    _, _, engine = setup
    client = phase_client("dual_write")
    assert client.post("/v1/jobs", json=job("J800002"), headers=WRITER).status_code == 201
    with engine.begin() as conn:  # someone writes the new table behind the gateway's back
        conn.execute(sa.text("UPDATE jobs SET notes = 'edited in core' WHERE job_number = 'J800002'"))
    assert client.patch("/v1/jobs/J800002", json={"quantity": 3}, headers=WRITER).status_code == 200
    health = client.get("/health/migration").json()
    assert health["resources"]["v1.jobs"]["counters"]["drift"] == 1
    # The mirror converged the row: core holds what legacy holds again.
    assert core_row(engine, "J800002")[2] == "from the API"


def test_cutover_writes_core_and_back_to_legacy(setup: Any, phase_client: Any) -> None:
    _, demo, engine = setup
    cutover, legacy = phase_client("cutover"), phase_client("legacy")
    created = cutover.post("/v1/jobs", json=job("J800003", status="planned"), headers=WRITER)
    assert created.status_code == 201, created.text
    assert core_row(engine, "J800003")[0] == "planned"
    assert legacy_row(demo, "J800003") == ("P", 1250, "N", "from the API")  # through the reverse codecs
    # Both databases now answer the same bytes and ETag for the row (a rollback loses nothing).
    on_core, on_legacy = cutover.get("/v1/jobs/J800003", headers=WRITER), legacy.get("/v1/jobs/J800003", headers=WRITER)
    assert on_core.content == on_legacy.content and on_core.headers["etag"] == on_legacy.headers["etag"]
    assert created.headers["etag"] == on_core.headers["etag"]
    assert cutover.patch("/v1/jobs/J800003", json={"status": "on_hold"}, headers=WRITER).status_code == 200
    action = cutover.post("/v1/jobs/J800003/actions/release", headers=WRITER)  # the clean table's own SQL
    assert action.status_code == 200 and action.json()["data"]["status"] == "released"
    assert legacy_row(demo, "J800003")[0] == "R"
    assert cutover.delete("/v1/jobs/J800003", headers=WRITER).status_code == 204
    assert hidden_in_core(engine, "J800003") is True and legacy_row(demo, "J800003")[2] == "Y"
    entries = cutover.app.state.ctx.audit.list(resource="jobs", key="J800003")
    assert [e.action for e in reversed(entries)] == ["create", "update", "action:release", "delete"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/v1/jobs", job("J800004", status="lost", quantity="x")),
        ("post", "/v1/jobs", job("J0000010123")),
        ("post", "/v1/jobs", {**job("J800004"), "unknown": 1}),
        ("patch", "/v1/jobs/J000001", {"job_number": "J7"}),
        ("patch", "/v1/jobs/J000001", {"due_date": "2026-02-30"}),
        ("post", "/v1/jobs", job("J000001")),  # exists: 409
    ],
)
def test_bad_writes_answer_alike_in_legacy_and_cutover(phase_client: Any, method: str, path: str, body: Any) -> None:
    answers = []
    for phase in ("legacy", "cutover"):
        response = getattr(phase_client(phase), method)(path, json=body, headers={**WRITER, "X-Request-ID": "same-id"})
        answers.append((response.status_code, response.content))
    assert answers[0] == answers[1] and answers[0][0] in (409, 422)


def test_row_filter_and_idempotency_hold_after_cutover(phase_client: Any) -> None:
    cutover = phase_client("cutover")
    # C0002's portal token cannot touch C0001's job, nor create one for C0001.
    assert cutover.patch("/v1/jobs/J000001", json={"quantity": 1}, headers=PORTAL).status_code in (403, 404)
    foreign = cutover.post("/v1/jobs", json=job("J800005"), headers=PORTAL)
    legacy = phase_client("legacy").post("/v1/jobs", json=job("J800005"), headers=PORTAL)
    assert foreign.status_code == legacy.status_code == 403
    keyed = {**WRITER, "Idempotency-Key": "migrate-idem-1"}
    first = cutover.post("/v1/jobs", json=job("J800006"), headers=keyed)
    again = cutover.post("/v1/jobs", json=job("J800006"), headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true" and again.content == first.content


def test_change_detection_follows_the_source_of_truth(setup: Any) -> None:
    """After cutover the sync's snapshot detector reads the clean table: a change made there is seen."""
    from sync.changes.snapshot_hash import SnapshotHashDetector
    from sync.state.memory import MemoryStore

    mapping, _, engine = setup
    for phase, expect_change in (("legacy", False), ("cutover", True)):
        moved = with_phase(mapping, phase)  # type: ignore[arg-type]
        versions = {"v1": bind_version(moved, "v1")}
        reader = RoutedReader(moved, open_databases(moved, Database(moved.database)), versions)
        customers = versions["v1"]["customers"]
        store = MemoryStore()
        detector = SnapshotHashDetector("customers", customers, tuple(customers.fields.values()), reader, store)
        first = [c for batch in detector.detect() for c in batch]
        store.accept("customers", {c.key: c.fingerprint for c in first if c.fingerprint})  # as delivery would
        detector.commit()
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE customers SET name = name || '!' WHERE customer_id = 'C0003'"))
        try:
            changed = [c.key for batch in detector.detect() for c in batch if c.op == "upsert"]
        finally:
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE customers SET name = rtrim(name, '!') WHERE customer_id = 'C0003'"))
            reader.dispose()
            reader.database.dispose()
        assert len(first) > 10
        assert (len(changed) == 1) is expect_change, (phase, changed)
