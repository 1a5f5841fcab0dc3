"""The same gateway over every backend: the demo data loaded once per session into each database.

``backend_url`` is parametrised over the backends; a test that takes it (or
``db_client``/``db_mapping``) runs once per backend:

==================  ========================================================  ==========================
id                  database                                                  needs
==================  ========================================================  ==========================
sqlite              the demo file through Python's sqlite3 (reference)        nothing
sqlite-odbc         a copy loaded through sqliteodbc                          unixODBC + SQLite3 driver
postgresql-odbc     ``bridgehead_tests`` on 127.0.0.1:5432 through psqlODBC   + PostgreSQL Unicode, server
mariadb-odbc        ``bridgehead_tests`` on 127.0.0.1:3306 through Connector  + MariaDB Unicode, server
mssql               ``BRIDGEHEAD_MSSQL_URL`` (a scratch database!)            a SQL Server you point at
==================  ========================================================  ==========================

A missing driver or server skips that backend with the reason, except with
``CI=true``, where it fails: CI must not go green by testing nothing
(``scripts/setup-odbc`` installs and registers the drivers). SQL Server cannot
run here, so without ``BRIDGEHEAD_MSSQL_URL`` it is skipped even in CI.
Override the servers with ``BRIDGEHEAD_TEST_PG_URL`` / ``BRIDGEHEAD_TEST_MARIADB_URL``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from db_backends import BACKEND_PARAMS, BackendCase, mapping_for, prepared_url
from litestar.testing import TestClient

from gateway import create_app
from legacy_adapters.mapping import Mapping


@pytest.fixture(scope="session", params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> BackendCase:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def backend_url(backend: BackendCase, demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The loaded database of this backend (loaded once per session)."""
    return prepared_url(backend.id, demo_db_path, tmp_path_factory)


@pytest.fixture(scope="session")
def db_mapping(backend_url: str, tmp_path_factory: pytest.TempPathFactory) -> Mapping:
    return mapping_for(backend_url, tmp_path_factory.mktemp("mapping"))


@pytest.fixture(scope="session")
def db_client(db_mapping: Mapping) -> Iterator[TestClient[Any]]:
    """The real app over ASGI against this backend's database."""
    with TestClient(create_app(db_mapping)) as test_client:
        yield test_client
