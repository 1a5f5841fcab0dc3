"""Text keys address exactly the row that holds them, byte for byte, on every backend.

MariaDB's and SQL Server's default collations ignore case (and trailing spaces): without
care ``GET /v1/accounts/c0042`` answers C0042's row there, a PATCH to it changes C0042, an
embed attaches c0042's orders to C0042, and a keyset page ending on one of two case
variants skips the other. Here every path that looks a row up by its key (get, get under
a row filter, patch, delete, the insert's "is this key taken", embeds, a row filter through
a relation, keyset paging) meets keys that differ only by case, on every backend.

``accounts`` has a CHAR(8) key under ``trim`` (its padding is not part of the key; a key
ending in a space names no row); ``codes`` a plain VARCHAR key, served as stored, so
``'ab '`` and ``'ab'`` are two keys. No table has a unique index: legacy tables often have
none, and a case-insensitive one would refuse these rows.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from db_backends import MSSQL_URL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from scratch_db import MAPPING_HEAD, SCRATCH_BACKENDS, scratch_url

from gateway import create_app
from legacy_adapters.check import verify_keys
from legacy_adapters.database import Database
from legacy_adapters.mapping import parse_mapping
from legacy_adapters.query.builder import order_for
from legacy_adapters.query.resource import bind_version
from legacy_adapters.query.unique import mark_unique_keys
from sync.state import StateDatabase
from tests.conftest import JWT_SECRET, TokenFactory

Client = TestClient[Any]

MAPPING = (
    MAPPING_HEAD
    + """\
      accounts:
        table: KEYACCT
        key: customer_id
        scopes: {read: "accounts:read", write: "accounts:write"}
        writable: true
        delete: {hard: true}
        fields:
          customer_id: {column: CUSTNO, type: string, transform: trim, length: 8, required: true}
          owner: {column: OWNER, type: string, transform: trim, length: 4}
          note: {column: NOTE, type: string, nullable: true}
        relations:
          orders: {resource: orders, on: {customer_id: customer_id}, many: true}
      orders:
        table: KEYORD
        key: id
        scopes: {read: "accounts:read"}
        row_filter: {account.owner: claims.owner}
        unfiltered_scope: "accounts:read:all"
        fields:
          id: {column: ID, type: integer}
          customer_id: {column: CUSTNO, type: string, transform: trim, length: 8}
        relations:
          account: {resource: accounts, on: {customer_id: customer_id}, many: false}
      codes:
        table: KEYCODE
        key: code
        scopes: {read: "accounts:read", write: "accounts:write"}
        writable: true
        delete: {hard: true}
        fields:
          code: {column: CODE, type: string, required: true}
          note: {column: NOTE, type: string, nullable: true}
"""
)
METADATA = sa.MetaData()
ACCOUNTS = sa.Table(
    "KEYACCT",
    METADATA,
    sa.Column("CUSTNO", sa.CHAR(8), nullable=False, quote=True),
    sa.Column("OWNER", sa.CHAR(4), nullable=False, quote=True),
    sa.Column("NOTE", sa.String(20), quote=True),
    quote=True,
)
ORDERS = sa.Table(
    "KEYORD",
    METADATA,
    sa.Column("ID", sa.Integer, nullable=False, autoincrement=False, quote=True),
    sa.Column("CUSTNO", sa.CHAR(8), nullable=False, quote=True),
    quote=True,
)
CODES = sa.Table(
    "KEYCODE",
    METADATA,
    sa.Column("CODE", sa.String(12), nullable=False, quote=True),
    sa.Column("NOTE", sa.String(20), quote=True),
    quote=True,
)
ACCOUNT_ROWS = {"C0042": "o1", "c0042": "o2", "C0043": "o1", "c0043": "o2", "Ab 1": "o1"}
ORDER_ROWS = {1: "C0042", 2: "c0042", 3: "c0042", 4: "C0043", 5: "Ab 1"}
CODE_ROWS = ["ab", "AB", "ab ", "Ab", "b", " b"]

BACKENDS = [*SCRATCH_BACKENDS, pytest.param("mssql", marks=pytest.mark.odbc)]


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    if request.param == "mssql":
        if not MSSQL_URL:
            pytest.skip("BRIDGEHEAD_MSSQL_URL is not set (a scratch SQL Server database)")
        url = MSSQL_URL
    else:
        url = scratch_url(request.param, tmp_path_factory.mktemp(f"textkeys-{request.param}"))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        METADATA.drop_all(conn, checkfirst=True)
        METADATA.create_all(conn)
    yield engine
    with engine.begin() as conn:
        METADATA.drop_all(conn, checkfirst=True)
    engine.dispose()


@pytest.fixture(scope="module")
def client(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    url = engine.url.render_as_string(hide_password=False)
    state = StateDatabase(f"sqlite:///{tmp_path_factory.mktemp('state') / 'state.db'}")
    with TestClient(create_app(parse_mapping(MAPPING % {"db": url, "secret": JWT_SECRET}), state=state)) as c:
        yield c


def fill(engine: sa.Engine, codes: list[str] = CODE_ROWS, accounts: dict[str, str] = ACCOUNT_ROWS) -> None:
    with engine.begin() as conn:
        for table in (ACCOUNTS, ORDERS, CODES):
            conn.execute(table.delete())
        # CHAR(8): stored padded, as a legacy system keeps it.
        padded = [{"CUSTNO": k.ljust(8), "OWNER": o.ljust(4), "NOTE": f"n {k}"} for k, o in accounts.items()]
        conn.execute(ACCOUNTS.insert(), padded)
        conn.execute(ORDERS.insert(), [{"ID": i, "CUSTNO": k.ljust(8)} for i, k in ORDER_ROWS.items()])
        if codes:
            conn.execute(CODES.insert(), [{"CODE": c, "NOTE": f"n {c!r}"} for c in codes])


@pytest.fixture
def rows(engine: sa.Engine) -> sa.Engine:
    fill(engine)
    return engine


@pytest.fixture
def reader(token: TokenFactory) -> dict[str, str]:
    return {"Authorization": f"Bearer {token('accounts:read', 'accounts:read:all', 'accounts:write')}"}


def path(resource: str, key: str) -> str:
    return f"/v1/{resource}/{urllib.parse.quote(key, safe='')}"


def stored_codes(engine: sa.Engine) -> dict[str, str | None]:
    """KEYCODE as stored: code -> note (read back exactly, trailing spaces and all)."""
    with engine.connect() as conn:
        return {r[0]: r[1] for r in conn.execute(sa.select(CODES.c.CODE, CODES.c.NOTE))}


def stored_accounts(engine: sa.Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return {r[0].rstrip(" "): r[1] for r in conn.execute(sa.select(ACCOUNTS.c.CUSTNO, ACCOUNTS.c.NOTE))}


def all_pages(client: Client, query: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    url: str | None = query
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        found.extend(body["data"])
        url = f"{query}&cursor={body['next_cursor']}" if body["next_cursor"] else None
    return found


# -- reads ------------------------------------------------------------------------------------------


def test_get_by_key_finds_its_own_spelling_only(client: Client, rows: sa.Engine, reader: dict[str, str]) -> None:
    for key in ACCOUNT_ROWS:
        got = client.get(path("accounts", key), headers=reader)
        assert got.status_code == 200, (key, got.text)
        assert got.json()["customer_id"] == key and got.json()["note"] == f"n {key}"
    for key in ("C0044", "c0044", "AB 1", "ab 1"):
        assert client.get(path("accounts", key), headers=reader).status_code == 404, key
    # The CHAR padding is not part of the key, and no key ends with a space: the same on every engine.
    assert client.get(path("accounts", "C0042 "), headers=reader).status_code == 404
    for key in CODE_ROWS:
        got = client.get(path("codes", key), headers=reader)
        assert got.status_code == 200, (key, got.text)
        assert got.json() == {"code": key, "note": f"n {key!r}"}
    for key in ("aB", "AB ", "b ", "B", "  b", "ab  "):
        assert client.get(path("codes", key), headers=reader).status_code == 404, repr(key)


def test_get_under_a_row_filter_through_a_relation(client: Client, rows: sa.Engine, token: TokenFactory) -> None:
    """Order 2 belongs to c0042 (o2's): o1, who owns C0042, must not see it by its key, in a list or embedded."""
    for owner in ("o1", "o2"):
        headers = {"Authorization": f"Bearer {token('accounts:read', owner=owner)}"}
        mine = {i for i, k in ORDER_ROWS.items() if ACCOUNT_ROWS[k] == owner}
        for i in ORDER_ROWS:
            got = client.get(f"/v1/orders/{i}?embed=account", headers=headers)
            assert got.status_code == (200 if i in mine else 404), (owner, i, got.text)
            if i in mine:
                assert got.json()["account"]["customer_id"] == ORDER_ROWS[i]
        listed = client.get("/v1/orders?limit=100", headers=headers).json()["data"]
        assert {r["id"] for r in listed} == mine


def test_embeds_join_on_the_exact_key(client: Client, rows: sa.Engine, reader: dict[str, str]) -> None:
    listed = all_pages(client, "/v1/accounts?embed=orders&limit=2", reader)
    got = {r["customer_id"]: sorted(o["id"] for o in r["orders"]) for r in listed}
    assert got == {k: sorted(i for i, c in ORDER_ROWS.items() if c == k) for k in ACCOUNT_ROWS}
    one = client.get(f"{path('accounts', 'c0042')}?embed=orders", headers=reader).json()
    assert sorted(o["id"] for o in one["orders"]) == [2, 3]
    # A to-one embed finds one account, not the two case variants.
    for i, key in ORDER_ROWS.items():
        order = client.get(f"/v1/orders/{i}?embed=account", headers=reader)
        assert order.status_code == 200, order.text
        assert order.json()["account"]["customer_id"] == key


@pytest.mark.parametrize("sort", ["", "&sort=-customer_id", "&sort=owner", "&sort=-note"])
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_keyset_pages_visit_every_account_once(
    client: Client, rows: sa.Engine, reader: dict[str, str], limit: int, sort: str
) -> None:
    seen = [r["customer_id"] for r in all_pages(client, f"/v1/accounts?limit={limit}{sort}", reader)]
    assert sorted(seen) == sorted(ACCOUNT_ROWS)


@pytest.mark.parametrize("sort", ["", "&sort=-code", "&sort=note"])
@pytest.mark.parametrize("limit", [1, 2, 4])
def test_keyset_pages_visit_every_code_once(
    client: Client, rows: sa.Engine, reader: dict[str, str], limit: int, sort: str
) -> None:
    seen = [r["code"] for r in all_pages(client, f"/v1/codes?limit={limit}{sort}", reader)]
    assert sorted(seen) == sorted(CODE_ROWS)
    # The same order as one page holding them all: the cursor follows the database's own order.
    whole = client.get(f"/v1/codes?limit=100{sort}", headers=reader).json()["data"]
    assert seen == [r["code"] for r in whole]


# -- writes -----------------------------------------------------------------------------------------


def test_patch_changes_its_own_spelling_only(client: Client, rows: sa.Engine, reader: dict[str, str]) -> None:
    etag = client.get(path("accounts", "c0042"), headers=reader).headers["etag"]
    patched = client.patch(path("accounts", "c0042"), json={"note": "changed"}, headers={**reader, "If-Match": etag})
    assert patched.status_code == 200, patched.text
    assert stored_accounts(rows) == {k: ("changed" if k == "c0042" else f"n {k}") for k in ACCOUNT_ROWS}
    # C0042's ETag did not move: its row was not touched.
    stale = client.patch(path("accounts", "C0042"), json={"note": "x"}, headers={**reader, "If-Match": etag})
    assert stale.status_code == 412
    for key in ("ab", "ab "):
        answer = client.patch(path("codes", key), json={"note": f"set {key!r}"}, headers=reader)
        assert answer.status_code == 200, answer.text
    assert stored_codes(rows) == {c: (f"set {c!r}" if c in ("ab", "ab ") else f"n {c!r}") for c in CODE_ROWS}
    assert client.patch(path("codes", "aB"), json={"note": "x"}, headers=reader).status_code == 404


def test_delete_removes_its_own_spelling_only(client: Client, rows: sa.Engine, reader: dict[str, str]) -> None:
    assert client.delete(path("codes", "AB"), headers=reader).status_code == 204
    assert client.delete(path("codes", "ab "), headers=reader).status_code == 204
    assert sorted(stored_codes(rows)) == sorted(c for c in CODE_ROWS if c not in ("AB", "ab "))
    assert client.delete(path("codes", "AB"), headers=reader).status_code == 404
    assert client.delete(path("accounts", "C0043"), headers=reader).status_code == 204
    assert sorted(stored_accounts(rows)) == sorted(k for k in ACCOUNT_ROWS if k != "C0043")


def test_create_takes_a_key_only_its_own_spelling_holds(
    client: Client, rows: sa.Engine, reader: dict[str, str]
) -> None:
    for code in ("aB", "ab  ", "B"):
        created = client.post("/v1/codes", json={"code": code, "note": "new"}, headers=reader)
        assert created.status_code == 201, (code, created.text)
    assert client.post("/v1/codes", json={"code": "ab", "note": "again"}, headers=reader).status_code == 409
    assert client.post("/v1/accounts", json={"customer_id": "C0043", "owner": "o3"}, headers=reader).status_code == 409
    created = client.post("/v1/accounts", json={"customer_id": "AB 1", "owner": "o3"}, headers=reader)
    assert created.status_code == 201, created.text
    assert stored_codes(rows)["aB"] == "new" and stored_codes(rows)["ab"] == "n 'ab'"
    assert client.get(path("accounts", "AB 1"), headers=reader).json()["owner"] == "o3"
    assert client.get(path("accounts", "Ab 1"), headers=reader).json()["owner"] == "o1"


# -- any keys ---------------------------------------------------------------------------------------

# Letters in both cases and spaces anywhere: the keys that collide under a case-insensitive,
# pad-space collation. Stored keys are distinct as stored (codes) or once trimmed (accounts).
code_keys = st.lists(st.text("aAbB ", min_size=1, max_size=4), min_size=1, max_size=8, unique=True)
account_keys = st.lists(
    st.text("aAbB ", min_size=1, max_size=5).map(lambda k: k.rstrip(" ")).filter(bool),
    min_size=1,
    max_size=8,
    unique=True,
)
requested = st.lists(st.text("aAbB ", min_size=1, max_size=5), max_size=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(codes=code_keys, accounts=account_keys, asked=requested)
def test_any_key_finds_exactly_its_row_and_pages_visit_each_once(
    client: Client, engine: sa.Engine, reader: dict[str, str], codes: list[str], accounts: list[str], asked: list[str]
) -> None:
    fill(engine, codes, {k: "o1" for k in accounts})
    for key in {*codes, *(k.swapcase() for k in codes), *(k + " " for k in codes), *asked}:
        got = client.get(path("codes", key), headers=reader)
        if key in codes:  # byte for byte: served as stored
            assert got.status_code == 200 and got.json()["code"] == key, (repr(key), got.text)
        else:
            assert got.status_code == 404, (repr(key), got.text)
    for key in {*accounts, *(k.swapcase() for k in accounts), *(k + " " for k in accounts), *asked}:
        got = client.get(path("accounts", key), headers=reader)
        if key in accounts:  # the CHAR padding is the mapping's (trim): not part of the key
            assert got.status_code == 200 and got.json()["customer_id"] == key, (repr(key), got.text)
        else:
            assert got.status_code == 404, (repr(key), got.text)
    assert sorted(r["code"] for r in all_pages(client, "/v1/codes?limit=2", reader)) == sorted(codes)
    assert sorted(r["customer_id"] for r in all_pages(client, "/v1/accounts?limit=2", reader)) == sorted(accounts)


# -- the start-up proof ------------------------------------------------------------------------------


def test_key_check_counts_case_variants_as_keys_of_their_own(engine: sa.Engine, rows: sa.Engine) -> None:
    """``serve`` proves keys unique: MariaDB's GROUP BY alone would call C0042 and c0042 one key."""
    url = engine.url.render_as_string(hide_password=False)
    mapping = parse_mapping(MAPPING % {"db": url, "secret": JWT_SECRET})
    database = Database(mapping.database)
    try:
        assert verify_keys(mapping, database, budget_s=60) == []
        with engine.begin() as conn:
            conn.execute(CODES.insert(), [{"CODE": "Ab", "NOTE": "again"}])
        (finding,) = verify_keys(mapping, database, budget_s=60)
        assert finding.path == "versions.v1.resources.codes.key" and "('Ab',)" in finding.message, finding
    finally:
        database.dispose()


UNIQUE_CODES = sa.Table(
    "KEYUNIQ",
    sa.MetaData(),
    sa.Column("CODE", sa.String(12), primary_key=True, quote=True),
    sa.Column("NOTE", sa.String(20), quote=True),
    quote=True,
)
UNIQUE_MAPPING = """
database: {url: "%(db)s"}
versions:
  v1:
    resources:
      unique_codes:
        table: KEYUNIQ
        key: code
        anonymous: true
        fields:
          code: {column: CODE, type: string}
      codes:
        table: KEYCODE
        key: code
        anonymous: true
        fields:
          code: {column: CODE, type: string}
"""


def test_a_key_the_database_keeps_unique_pages_in_its_index_order(
    engine: sa.Engine, rows: sa.Engine, tmp_path: Path
) -> None:
    """Its collation cannot hold two case variants: no tie-break, so an index still serves the ORDER BY."""
    with engine.begin() as conn:
        UNIQUE_CODES.drop(conn, checkfirst=True)
        UNIQUE_CODES.create(conn)
        conn.execute(UNIQUE_CODES.insert(), [{"CODE": c} for c in ("b", "A", "c", "D", "ab")])
    url = engine.url.render_as_string(hide_password=False)
    mapping = parse_mapping(UNIQUE_MAPPING % {"db": url})
    database = Database(mapping.database)
    try:
        resources = bind_version(mapping, "v1")
        mark_unique_keys(resources.values(), lambda _r: database)
        ties_broken = engine.dialect.name in ("mysql", "mssql")

        def order_sql(name: str) -> str:
            order = order_for(resources[name], ())
            return str(sa.select(resources[name].table).order_by(*(k.order_by() for k in order)).compile(engine))

        assert "COLLATE" not in order_sql("unique_codes")
        assert ("COLLATE" in order_sql("codes")) == ties_broken  # no index: case variants may tie
        state = StateDatabase(f"sqlite:///{tmp_path / 'state.db'}")  # not make demo's default store
        with TestClient(create_app(mapping, database=database, state=state)) as client:
            seen = [r["code"] for r in all_pages(client, "/v1/unique_codes?limit=2", {})]
        assert sorted(seen) == sorted(("b", "A", "c", "D", "ab"))
    finally:
        with engine.begin() as conn:
            UNIQUE_CODES.drop(conn, checkfirst=True)
