"""Text filters and row filters compare code point by code point on every backend.

MariaDB's and SQL Server's default collations are case-insensitive: without care a portal
token whose ``customer_id`` claim is ``c0042`` would see ``C0042``'s rows there, and
``?customer_id=C0042`` would answer differently than on SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient
from scratch_db import MAPPING_HEAD, SCRATCH_BACKENDS, scratch_url

from gateway import create_app
from legacy_adapters.mapping import parse_mapping
from sync.state import StateDatabase
from tests.conftest import JWT_SECRET, TokenFactory

MAPPING = (
    MAPPING_HEAD
    + """\
      accounts:
        table: ACCTCASE
        key: id
        scopes: {read: "accounts:read"}
        row_filter: {customer_id: claims.customer_id}
        fields:
          id: {column: ID, type: integer}
          customer_id: {column: CUSTNO, transform: trim, length: 8}
"""
)
TABLE = sa.Table(
    "ACCTCASE",
    sa.MetaData(),
    sa.Column("ID", sa.Integer, primary_key=True, autoincrement=False, quote=True),
    sa.Column("CUSTNO", sa.CHAR(8), nullable=False, quote=True),
    quote=True,
)
ROWS = ["C0042", "c0042", "C0043", "C0042"]


@pytest.fixture(
    scope="module",
    params=SCRATCH_BACKENDS,
)
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Any]]:
    url = scratch_url(request.param, tmp_path_factory.mktemp(f"textcase-{request.param}"))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        TABLE.drop(conn, checkfirst=True)
        TABLE.create(conn)
        conn.execute(TABLE.insert(), [{"ID": i, "CUSTNO": c.ljust(8)} for i, c in enumerate(ROWS)])  # CHAR(8), padded
    engine.dispose()
    state = StateDatabase(f"sqlite:///{tmp_path_factory.mktemp('state') / 'state.db'}")
    with TestClient(create_app(parse_mapping(MAPPING % {"db": url, "secret": JWT_SECRET}), state=state)) as c:
        yield c


def _ids(client: TestClient[Any], query: str, headers: dict[str, str]) -> set[int]:
    answer = client.get(f"/v1/accounts{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    return {row["id"] for row in answer.json()["data"]}


def _want(match: Any) -> set[int]:
    return {i for i, c in enumerate(ROWS) if match(c)}


def test_row_filter_claim_matches_its_own_spelling_only(client: TestClient[Any], token: TokenFactory) -> None:
    for claim in ("c0042", "C0042"):
        portal = {"Authorization": f"Bearer {token('accounts:read', customer_id=claim)}"}
        assert _ids(client, "", portal) == _want(lambda c, claim=claim: c == claim)
        assert _ids(client, "?customer_id=C0043", portal) == set()


def test_text_filters_are_case_exact(client: TestClient[Any], admin: dict[str, str]) -> None:
    assert _ids(client, "?customer_id=C0042", admin) == _want(lambda c: c == "C0042")
    assert _ids(client, "?customer_id=c0042", admin) == _want(lambda c: c == "c0042")
    assert _ids(client, "?customer_id[ne]=C0042", admin) == _want(lambda c: c != "C0042")
    assert _ids(client, "?customer_id[in]=c0042,C0043", admin) == _want(lambda c: c in ("c0042", "C0043"))
    # CHAR padding still does not count: the stored 'C0043   ' is served and matched as 'C0043'.
    assert _ids(client, "?customer_id=C0043", admin) == _want(lambda c: c == "C0043")


def test_get_by_key_of_text_row_filter(client: TestClient[Any], token: TokenFactory, tmp_path: Path) -> None:
    portal = {"Authorization": f"Bearer {token('accounts:read', customer_id='c0042')}"}
    assert client.get("/v1/accounts/1", headers=portal).status_code == 200
    assert client.get("/v1/accounts/0", headers=portal).status_code == 404
