"""Empty databases of their own for tests that bring their own tables (like rules, the distributor).

The shared read database holds the demo; these tests create other schemas, so they get
``bridgehead_scratch<suffix>`` on the servers (``BRIDGEHEAD_TEST_DB_SUFFIX`` keeps parallel
checkouts apart) and fresh files for SQLite. A missing driver or server skips locally and
fails in CI, as for every backend test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from db_backends import CASES, MARIADB_URL, PG_URL, _odbc_admin, require_driver, require_port

__all__ = ("MAPPING_HEAD", "SCRATCH_BACKENDS", "SCRATCH_DATABASE", "scratch_url")

SCRATCH_DATABASE = f"bridgehead_scratch{os.environ.get('BRIDGEHEAD_TEST_DB_SUFFIX', '')}"
SCRATCH_BACKENDS = [
    "sqlite",
    pytest.param("sqlite-odbc", marks=pytest.mark.odbc),
    pytest.param("postgresql-odbc", marks=pytest.mark.odbc),
    pytest.param("mariadb-odbc", marks=pytest.mark.odbc),
]
"""The backends ``scratch_url`` makes a database on: a module fixture's ``params``."""
MAPPING_HEAD = """
database: {url: "%(db)s"}
auth: {issuer: bridgehead-demo, audience: bridgehead, hs256_secret: "%(secret)s"}
versions:
  v1:
    resources:
"""
"""The start of a scratch test's mapping: its ``v1`` resources follow; ``%``-format it with ``db`` and ``secret``."""


def scratch_url(case_id: str, tmp: Path) -> str:
    """The URL of an empty (or left-over, to be overwritten) database on backend ``case_id``."""
    case = next(c for c in CASES if c.id == case_id)
    if case_id == "sqlite":
        return f"sqlite:///{tmp / 'scratch.db'}"
    assert case.driver is not None
    require_driver(case.driver)
    if case_id == "sqlite-odbc":
        return f"sqlite+pyodbc:///{tmp / 'scratch-odbc.db'}"
    base = PG_URL if case_id == "postgresql-odbc" else MARIADB_URL
    parsed = sa.make_url(base).set(database=SCRATCH_DATABASE)
    require_port(parsed, 5432 if case_id == "postgresql-odbc" else 3306)
    if case_id == "postgresql-odbc":
        _odbc_admin(parsed, f'CREATE DATABASE "{SCRATCH_DATABASE}"')
    else:
        _odbc_admin(parsed, f"CREATE DATABASE IF NOT EXISTS `{SCRATCH_DATABASE}` CHARACTER SET utf8mb4")
    return parsed.render_as_string(hide_password=False)
