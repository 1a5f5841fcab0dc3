"""The migration bridge keeps the contract: /v1/jobs and /v1/customers answer byte for byte the same
(bodies, ETags, Link headers, errors) in every phase, on SQLite -> PostgreSQL and PostgreSQL -> PostgreSQL.

One small demo database per legacy backend, copied once per module to a PostgreSQL
"core" database; each phase is a gateway built over the same two databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from db_backends import (
    _SUFFIX,
    CASES,
    JWT_SECRET,
    PG_URL,
    _odbc_admin,
    _prepare,
    _with_database,
    require_driver,
    require_port,
)
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.cli import mint_token
from legacy_adapters.database import Database
from legacy_adapters.demo import MIGRATION_MAPPING_PATH, create_demo_database
from legacy_adapters.mapping import Mapping, load_mapping
from legacy_adapters.migration.copy import copy_rows, verify_rows
from legacy_adapters.migration.phases import with_phase
from legacy_adapters.migration.routing import RoutedReader, open_databases
from legacy_adapters.query.resource import bind_version
from sync.state import StateDatabase

pytestmark = pytest.mark.odbc

PHASES = ("legacy", "shadow", "dual_write", "cutover")
SECRET = b"m" * 32
CORE_DATABASE = f"bridgehead_core{_SUFFIX}"
LEGACY_PG_DATABASE = f"bridgehead_migrate_legacy{_SUFFIX}"


def _pg(database: str) -> str:
    require_driver("PostgreSQL Unicode")
    url = _with_database(PG_URL, database) if database != sa.make_url(PG_URL).database else sa.make_url(PG_URL)
    url = sa.make_url(PG_URL).set(database=database)
    require_port(url, 5432)
    _odbc_admin(url, f'CREATE DATABASE "{database}"')
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql-odbc"], ids=["sqlite-to-pg", "pg-to-pg"])
def moved(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mapping]:
    """The migration mapping over a small demo (legacy) and a core database holding a fresh copy."""
    tmp = tmp_path_factory.mktemp(f"migration-{request.param}")
    demo = tmp / "demo.db"
    create_demo_database(demo, rows=240)
    case = next(c for c in CASES if c.id == request.param)
    legacy_url = _prepare(case, demo, tmp, LEGACY_PG_DATABASE) if case.id != "sqlite" else f"sqlite:///{demo}"
    core_url = _pg(CORE_DATABASE)
    environ = {
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_DB_URL": legacy_url,
        "BRIDGEHEAD_CORE_URL": core_url,
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{tmp / 'state.db'}",
    }
    mapping = load_mapping(MIGRATION_MAPPING_PATH, environ)
    reader = RoutedReader(
        mapping, open_databases(mapping, Database(mapping.database)), {"v1": bind_version(mapping, "v1")}
    )
    try:
        for route in reader.routes.values():
            source, target = reader.database_of(route.legacy_database), reader.database_of(route.twin_database)
            report = copy_rows(route, source, target, batch_size=64, restart=True)
            assert report.copied == report.source_rows + report.hidden > report.hidden > 0
            assert verify_rows(route, source, target).ok
    finally:
        reader.dispose()
        reader.database.dispose()
    yield mapping


def _token(*scopes: str, **claims: Any) -> dict[str, str]:
    token = mint_token(JWT_SECRET, subject="phases", scopes=list(scopes), claims=claims, ttl_s=4 * 3600,
                       issuer="bridgehead-demo", audience="bridgehead")  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


ADMIN = _token("admin")
PORTAL = _token("jobs:read", "customers:read", customer_id="C0007")
ANSWERED = ("status", "content", "etag", "link")


def _requests(client: TestClient[Any]) -> list[tuple[str, dict[str, str]]]:
    """Every page of both lists, filters, sorts, single rows, a row filter and errors."""
    asked: list[tuple[str, dict[str, str]]] = []
    for resource in ("jobs", "customers"):
        path: str | None = f"/v1/{resource}?limit=40"
        while path is not None:
            asked.append((path, ADMIN))
            link = client.get(path, headers=ADMIN).headers.get("link")
            path = link[1 : link.index(">")] if link else None
    first = msgspec.json.decode(client.get("/v1/jobs?limit=5", headers=ADMIN).content)["data"]
    for sort in ("-quantity", "ordered_at", "-ordered_at", "customer_id", "-job_number", "notes"):
        page = f"/v1/jobs?sort={sort}&limit=30"
        asked.append((page, ADMIN))
        link = client.get(page, headers=ADMIN).headers.get("link")
        if link:
            asked.append((link[1 : link.index(">")], ADMIN))
    asked.extend(
        (path, ADMIN)
        for path in (
            "/v1/jobs?status=released&limit=20",
            "/v1/jobs?status[in]=on_hold,planned&count=exact&limit=10",
            "/v1/jobs?rush=true&priority=false&limit=20",
            "/v1/jobs?quantity[gte]=500.5&limit=20",
            "/v1/jobs?ordered_at[gte]=2020-01-01T00:00:00Z&limit=20",
            "/v1/jobs?notes[isnull]=false&limit=20",
            "/v1/jobs?item_number[like]=VALV*&limit=20",
            f"/v1/jobs?customer_id={first[0]['customer_id']}&embed=customer&limit=20",
            "/v1/jobs?fields=job_number,status&limit=20",
            "/v1/customers?active=false",
            "/v1/customers?name[ilike]=*castings*&sort=-credit_limit",
            "/v1/customers?opened_on[lt]=2000-01-01&count=exact",
            "/v1/customers?embed=jobs&limit=3",
            "/v1/jobs?status=nonsense",
            "/v1/jobs?sort=status",
            "/v1/jobs/J999999",
            "/v1/customers/C0001?fields=name",
        )
    )
    asked.extend((f"/v1/jobs/{row['job_number']}", ADMIN) for row in first)
    # Exports stream every row from wherever the phase reads (NDJSON and CSV).
    asked.append(("/v1/jobs?rush=true&sort=-ordered_at", {**ADMIN, "Accept": "application/x-ndjson"}))
    asked.append(("/v1/customers?fields=customer_id,name,credit_limit", {**ADMIN, "Accept": "text/csv"}))
    asked.extend((f"/v1/jobs/{row['job_number']}?embed=customer", ADMIN) for row in first[:2])
    asked.extend(
        [("/v1/jobs?limit=50", PORTAL), ("/v1/customers", PORTAL), ("/v1/customers/C0001", PORTAL),
         ("/v1/customers/C0007", PORTAL)]
    )  # fmt: skip
    return asked


def _answers(mapping: Mapping, phase: str, tmp: Path, asked: list[tuple[str, dict[str, str]]] | None = None) -> Any:
    app = create_app(with_phase(mapping, phase), cursor_secret=SECRET,  # type: ignore[arg-type]
                     state=StateDatabase(f"sqlite:///{tmp / f'{phase}.db'}"))  # fmt: skip
    with TestClient(app) as client:
        asked = asked if asked is not None else _requests(client)
        answers = []
        for n, (path, headers) in enumerate(asked):
            response = client.get(path, headers={**headers, "X-Request-ID": f"phase-{n}"})
            answers.append((response.status_code, response.content, response.headers.get("etag"),
                            response.headers.get("link")))  # fmt: skip
        ctx = app.state.ctx
        if ctx.shadow is not None:
            ctx.shadow.drain()
        stats = {name: ctx.migration_stats.of(name) for name in ("v1.jobs", "v1.customers")}
        health = client.get("/health/migration").json()
    return asked, answers, stats, health


def test_every_phase_answers_byte_for_byte_like_legacy(moved: Mapping, tmp_path: Path) -> None:
    asked, expected, _, _ = _answers(moved, "legacy", tmp_path)
    assert len(asked) > 40 and {a[0] for a in expected} == {200, 400, 404}
    for phase in PHASES[1:]:
        _, answers, stats, health = _answers(moved, phase, tmp_path, asked)
        for (path, _), want, got in zip(asked, expected, answers, strict=True):
            assert got == want, f"{phase}: GET {path} differs"
        assert health["resources"]["v1.jobs"]["phase"] == phase
        if phase in ("shadow", "dual_write"):
            jobs = stats["v1.jobs"]
            # Every sampled read was answered by the core database too, and none differed.
            assert jobs["compared"] > 20 and jobs["differed"] == 0 and jobs["failed"] == 0, (jobs, health["recent"])
