"""A table too big to count in time: introspect and serve say so instead of waiting or guessing silently.

A million-row keyless log under a 50 ms statement timeout: introspect's
whole-table count of the candidate key times out, so the key is offered as
"unique in the sampled rows only"; serve's start-up proof times out, so the
key is reported unverified (a warning) and the reads guard it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from legacy_adapters.check import verify_keys
from legacy_adapters.database import Database
from legacy_adapters.introspect import introspect
from legacy_adapters.mapping.load import parse_mapping
from legacy_adapters.mapping.model import DatabaseConfig
from tests.conftest import JWT_SECRET

ROWS = 1_000_000
TIMEOUT_S = 0.05


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE SHIPLOG (BRANCH CHAR(3), SEQ INTEGER, WEIGHT INTEGER)")
        db.execute(
            "INSERT INTO SHIPLOG WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " SELECT printf('B%02d', i % 50), i / 50, i % 997 FROM n",
            (ROWS - 1,),
        )
    return path


def test_introspect_offers_the_key_as_unverified_when_counting_times_out(big_log: Path) -> None:
    database = Database(DatabaseConfig(url=f"sqlite:///{big_log}", statement_timeout_s=TIMEOUT_S))
    try:
        text = introspect(database, sample_rows=100)
    finally:
        database.dispose()
    assert "key: [branch, sequence]" in text
    assert (
        "# key: guessed (BRANCH, SEQ): no repeated value in the 100 sampled rows only"
        " (the table was too slow to count); check verifies it\n"
    ) in text


def test_serve_start_up_reports_a_key_it_could_not_prove_in_time(big_log: Path, tmp_path: Path) -> None:
    mapping = parse_mapping(
        f"""\
database:
  url: sqlite:///{big_log}
  statement_timeout_s: {TIMEOUT_S}
auth:
  issuer: bridgehead
  audience: bridgehead
  hs256_secret: {JWT_SECRET}
state:
  url: sqlite:///{tmp_path / "state.db"}
versions:
  v1:
    resources:
      shipments:
        table: SHIPLOG
        key: [branch, sequence]
        fields:
          branch: {{column: BRANCH, type: string, transform: trim, length: 3}}
          sequence: {{column: SEQ, type: integer}}
"""
    )
    database = Database(mapping.database)
    try:
        findings = verify_keys(mapping, database, budget_s=30)
    finally:
        database.dispose()
    assert [(f.severity, f.path, f.message) for f in findings] == [
        (
            "warning",
            "versions.v1.resources.shipments.key",
            "key uniqueness not verified at start-up; a read meeting a repeated key is refused"
            " (the statement timed out)",
        )
    ]
