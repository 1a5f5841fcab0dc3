"""``bridgehead introspect`` through every backend's real driver gives a mapping that checks and serves.

The catalogue differs per driver (psqlODBC cannot reflect indexes: SQLAlchemy
gets PostgreSQL arrays as text), so keys may come from the catalogue on one
backend and from the sample on another; the guesses and the served rows must
be the same all the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from db_backends import JWT_SECRET
from litestar.testing import TestClient

from gateway import create_app
from gateway.cli import mint_token
from legacy_adapters.check import check_mapping
from legacy_adapters.database import Database
from legacy_adapters.demo.load import DEMO_TABLES
from legacy_adapters.introspect import introspect
from legacy_adapters.mapping.load import parse_mapping
from legacy_adapters.mapping.model import DatabaseConfig, Mapping

QUERY = "/v1/jobs?sort=job_number&limit=20&embed=customer"


def _introspected(url: str, tmp: Path) -> tuple[str, Mapping]:
    database = Database(DatabaseConfig(url=url))
    try:
        # Only the demo tables: other tests may leave their own tables in the scratch database.
        text = introspect(database, tables=DEMO_TABLES)
    finally:
        database.dispose()
    environ = {
        "BRIDGEHEAD_DB_URL": url,
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{tmp / 'state.db'}",
    }
    return text, parse_mapping(text, source="introspected.yaml", environ=environ)


def _get(mapping: Mapping, path: str) -> Any:
    auth = mapping.auth
    assert auth is not None and auth.hs256_secret is not None
    token = mint_token(
        auth.hs256_secret,
        subject="t",
        scopes=["admin"],
        claims={},
        ttl_s=600,
        issuer=auth.issuer,
        audience=auth.audience,
    )
    with TestClient(create_app(mapping)) as client:
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.fixture(scope="module")
def reference(demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The answer through the introspected mapping of the demo file itself."""
    _, mapping = _introspected(f"sqlite:///{demo_db_path}", tmp_path_factory.mktemp("reference"))
    return _get(mapping, QUERY)


def test_introspected_mapping_checks_and_serves(backend_url: str, reference: Any, tmp_path: Path) -> None:
    text, mapping = _introspected(backend_url, tmp_path)
    resources = {r.table.rpartition(".")[2]: r for r in mapping.versions["v1"].resources.values()}
    assert set(resources) == set(DEMO_TABLES)
    jobs = resources["JOBMAST"]
    fields = {f.column: f for f in jobs.fields.values()}
    assert (fields["DUEDT"].date, fields["DUEDT"].null_if) == ("yyyymmdd", [0, 99999999])
    assert fields["RUSHFL"].transform == "yes_no"
    assert (fields["JOBNO"].transform, fields["JOBNO"].length) == ("trim", 10)
    assert jobs.key == "job_number"
    assert "the catalogue shows no primary key and no unique index" in text.split("# STKBAL: ")[1]

    database = Database(mapping.database)
    try:
        errors = [f for f in check_mapping(mapping, database, thorough=True) if f.severity == "error"]
    finally:
        database.dispose()
    assert errors == []
    assert _get(mapping, QUERY) == reference
