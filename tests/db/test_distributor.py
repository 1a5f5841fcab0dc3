"""The AS/400-style distributor on four backends: introspect -> check -> serve, and keys that repeat.

``bridgehead introspect`` must yield a mapping that ``check`` accepts and that
serves every row with the right values without edits; the values are compared
with the stored ones decoded here, independently of the gateway's codecs. A
mapping keyed on (branch, carrier) — unique only with the sequence number — must
never be served silently: ``serve`` refuses to start, and a gateway started
without that proof refuses the reads that meet a repeat.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from click.testing import CliRunner
from db_backends import JWT_SECRET
from litestar.testing import TestClient
from scratch_db import scratch_url

from gateway import create_app
from gateway.cli import main, mint_token
from legacy_adapters.check import check_mapping, verify_keys
from legacy_adapters.database import Database
from legacy_adapters.introspect import introspect
from legacy_adapters.mapping.load import parse_mapping
from legacy_adapters.mapping.model import DatabaseConfig, Mapping
from legacy_adapters.samples.distributor import DISTRIBUTOR_TABLES, create_distributor
from tests.conftest import MAPPING_PREAMBLE

ROWS = 1000


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        *(pytest.param(b, marks=pytest.mark.odbc) for b in ("sqlite-odbc", "postgresql-odbc", "mariadb-odbc")),
    ],
)
def distributor_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The distributor written once per backend (NUMERIC columns arrive as Decimal or float through ODBC)."""
    url = scratch_url(request.param, tmp_path_factory.mktemp(f"distributor-{request.param}"))
    create_distributor(url, rows=ROWS)
    return url


def _environ(url: str, tmp: Path) -> dict[str, str]:
    return {
        "BRIDGEHEAD_DB_URL": url,
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{tmp / 'state.db'}",
    }


def _headers(mapping: Mapping) -> dict[str, str]:
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
    return {"Authorization": f"Bearer {token}"}


def _walk(client: TestClient[Any], path: str, headers: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    """Every row of a list, page by page, and what count=exact said on the first page."""
    sep = "&" if "?" in path else "?"
    response = client.get(f"{path}{sep}limit=500&count=exact", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    rows, count = list(body["data"]), body["count"]
    while body["next_cursor"]:
        response = client.get(f"{path}{sep}limit=500&cursor={body['next_cursor']}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["data"])
    return rows, count


# -- introspect -> check -> serve ------------------------------------------------------------------


def _ordinal(year: int, day: int) -> dt.date:
    return dt.date(year, 1, 1) + dt.timedelta(days=day - 1)


def _clock(hours: int, minutes: int, seconds: int = 0) -> dt.time:
    return dt.time(hours, minutes, seconds)


Decoder = Callable[[Any], Any]
TRIM: Decoder = lambda v: v.rstrip(" ")  # noqa: E731
NUMBER: Decoder = lambda v: int(v)  # noqa: E731
MONEY: Decoder = lambda v: Decimal(str(v))  # noqa: E731
TF: Decoder = {"T": True, "F": False}.__getitem__
YN: Decoder = {"Y": True, "N": False}.__getitem__
CYYMMDD: Decoder = lambda v: dt.date(1900 + int(v) // 10000, int(v) // 100 % 100, int(v) % 100)  # noqa: E731
YYYYDDD: Decoder = lambda v: _ordinal(int(v) // 1000, int(v) % 1000)  # noqa: E731
CYYDDD: Decoder = lambda v: None if int(v) == 0 else _ordinal(1900 + int(v) // 1000, int(v) % 1000)  # noqa: E731
YYMMDD: Decoder = lambda v: dt.date(2000 + int(v) // 10000, int(v) // 100 % 100, int(v) % 100)  # noqa: E731
YYYYMMDD: Decoder = lambda v: dt.date(int(v) // 10000, int(v) // 100 % 100, int(v) % 100)  # noqa: E731
HHMM: Decoder = lambda v: _clock(int(v) // 100, int(v) % 100)  # noqa: E731
HHMMSS: Decoder = lambda v: _clock(int(v) // 10000, int(v) // 100 % 100, int(v) % 100)  # noqa: E731

STORED: dict[str, dict[str, Decoder]] = {
    "CUSTOMERS": {
        "CUSNO": NUMBER,
        "CUSNAME": TRIM,
        "REGION": TRIM,
        "ACTIVE": TF,
        "CRLIMIT": MONEY,
        "CRTDT": CYYMMDD,
        "EMAIL": str,
        "USER": TRIM,
    },
    "ITEM MASTER": {
        "ITEMNO": TRIM,
        "DESC": TRIM,
        "UOM": TRIM,
        "LIST PRICE": MONEY,
        "LRCVDT": CYYDDD,
        "LRCVTM": HHMMSS,
        "DISCONT": YN,
    },
    "ORDER": {
        "ORDNO": NUMBER,
        "CUSNO": NUMBER,
        "ORDDT": YYYYDDD,
        "ORDTM": HHMM,
        "STATUS": TRIM,  # served as stored, '??' included, until someone names the codes
        "RUSH": TF,
        "TOTAL": MONEY,
        "SHIP DATE": CYYMMDD,
        "USER": TRIM,
    },
    "ORDLINES": {
        "ORDNO": NUMBER,
        "LINE": NUMBER,
        "ITEMNO": TRIM,
        "QTY": NUMBER,
        "LINE AMT": MONEY,
        "DUE DT": YYMMDD,
        "PROMDT": YYYYMMDD,
        "BACKORD": YN,
    },
    "SHIPLOG": {
        "BRANCH": TRIM,
        "CARRIER": TRIM,
        "SEQ": NUMBER,
        "ORDNO": NUMBER,
        "SHPDT": CYYMMDD,
        "SHPTM": HHMM,
        "WEIGHT": MONEY,
        "SIGNED": TF,
        "USER": TRIM,
        "NOTE": str,
    },
}
"""How each stored column decodes, written from the schema's documentation, not from the mapping."""


def _served(value: Any, like: Any) -> Any:
    """A served JSON value in the Python type of the expected one."""
    if value is None or like is None:
        return value
    if isinstance(like, dt.date):
        return dt.date.fromisoformat(value)
    if isinstance(like, dt.time):
        return dt.time.fromisoformat(value)
    if isinstance(like, Decimal):
        return Decimal(str(value))
    return value


def _expected_rows(url: str, table: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        columns = list(STORED[table])
        reflected = sa.Table(table, sa.MetaData(), *(sa.Column(c, quote=True) for c in columns), quote=True)
        with engine.connect() as conn:
            raw = conn.execute(sa.select(reflected)).all()
    finally:
        engine.dispose()
    return [{c: None if v is None else STORED[table][c](v) for c, v in zip(columns, row, strict=True)} for row in raw]


@pytest.fixture(scope="module")
def introspected(distributor_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Mapping]:
    database = Database(DatabaseConfig(url=distributor_url))
    try:
        text = introspect(database, tables=DISTRIBUTOR_TABLES)
    finally:
        database.dispose()
    return text, parse_mapping(
        text, source="starter.yaml", environ=_environ(distributor_url, tmp_path_factory.mktemp("s"))
    )


def test_the_introspected_starter_passes_check(introspected: tuple[str, Mapping]) -> None:
    _, mapping = introspected
    database = Database(mapping.database)
    try:
        findings = check_mapping(mapping, database, thorough=True)
    finally:
        database.dispose()
    assert [str(f) for f in findings] == []


def test_the_introspected_starter_serves_every_value_right(distributor_url: str, introspected: Any) -> None:
    _, mapping = introspected
    headers = _headers(mapping)
    resources = mapping.versions["v1"].resources
    with TestClient(create_app(mapping)) as client:
        for name, spec in resources.items():
            served, count = _walk(client, f"/v1/{name}", headers)
            expected = _expected_rows(distributor_url, spec.table)
            assert count == len(served) == len(expected), name
            column_of = {field: f.column for field, f in spec.fields.items()}
            key = [spec.key] if isinstance(spec.key, str) else list(spec.key)
            by_key = {tuple(row[column_of[k]] for k in key): row for row in expected}
            for row in served:
                want = by_key[tuple(row[k] for k in key)]
                got = {column_of[f]: _served(v, want[column_of[f]]) for f, v in row.items()}
                assert got == want, (name, row)


def test_filters_sorts_and_embeds_agree_with_the_stored_values(distributor_url: str, introspected: Any) -> None:
    _, mapping = introspected
    headers = _headers(mapping)
    orders = _expected_rows(distributor_url, "ORDER")
    lines = Counter(r["ORDNO"] for r in _expected_rows(distributor_url, "ORDLINES"))
    with TestClient(create_app(mapping)) as client:
        since = dt.date(2025, 6, 1)
        served, count = _walk(
            client, f"/v1/orders?order_date[gte]={since}&sort=order_date&fields=order_number", headers
        )
        want = sorted((r["ORDDT"], r["ORDNO"]) for r in orders if r["ORDDT"] >= since)
        assert [r["order_number"] for r in served] == [n for _, n in want] and count == len(want)
        unknown, _ = _walk(client, "/v1/orders?status=%3F%3F&fields=order_number", headers)
        assert sorted(r["order_number"] for r in unknown) == sorted(r["ORDNO"] for r in orders if r["STATUS"] == "??")
        assert unknown
        unshipped, _ = _walk(client, "/v1/orders?ship_date[isnull]=true&fields=order_number", headers)
        assert len(unshipped) == sum(1 for r in orders if r["SHIP DATE"] is None) > 0
        rush, _ = _walk(client, "/v1/orders?rush=true&fields=order_number", headers)
        assert len(rush) == sum(1 for r in orders if r["RUSH"]) > 0
        # The order -> lines relation found on a keyless table, embedded.
        page = client.get("/v1/orders?limit=50&sort=order_number&embed=order_lines", headers=headers).json()["data"]
        assert [len(o["order_lines"]) for o in page] == [lines[o["order_number"]] for o in page]


# -- keys that repeat ------------------------------------------------------------------------------

_MINIMAL = (
    MAPPING_PREAMBLE
    + """\
versions:
  v1:
    resources:
      shipments:
        table: SHIPLOG
        key: KEY
        scopes: {read: "shipments:read"}
        fields:
          branch: {column: BRANCH, type: string, transform: trim, length: 3}
          carrier: {column: CARRIER, type: string, transform: trim, length: 4}
          sequence: {column: SEQ, type: integer}
          user: {column: USER, type: string, transform: trim, length: 10}
"""
)
BRANCH_CARRIER = _MINIMAL.replace("key: KEY", "key: [branch, carrier]")
FULL_KEY = _MINIMAL.replace("key: KEY", "key: [branch, carrier, sequence]")


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(args))
    # One worker runs through uvicorn.Server (so a late start-up check can stop it).
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *args, **kwargs: started.append(self))
    return started


def _serve(tmp_path: Path, url: str, text: str, *options: str) -> Any:
    path = tmp_path / "bridgehead.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "-c", str(path), *options], env=_environ(url, tmp_path))
    assert "Traceback" not in result.output
    return result


def test_serve_refuses_to_start_on_a_key_that_repeats(
    distributor_url: str, tmp_path: Path, no_server: list[Any]
) -> None:
    result = _serve(tmp_path, distributor_url, BRANCH_CARRIER)
    assert result.exit_code == 2 and no_server == []
    path = tmp_path / "bridgehead.yaml"
    assert f"{path}: error: versions.v1.resources.shipments.key: key (branch,carrier) is not unique" in result.output
    # The natural key passes, and the server starts.
    assert _serve(tmp_path, distributor_url, FULL_KEY).exit_code == 0 and len(no_server) == 1


def test_a_start_up_without_the_proof_says_so(distributor_url: str, tmp_path: Path, no_server: list[Any]) -> None:
    mapping = parse_mapping(BRANCH_CARRIER, environ=_environ(distributor_url, tmp_path))
    database = Database(mapping.database)
    try:
        unproven = verify_keys(mapping, database, budget_s=0)
        proven = verify_keys(mapping, database, budget_s=30)
    finally:
        database.dispose()
    assert [(f.severity, f.path) for f in unproven] == [("warning", "versions.v1.resources.shipments.key")]
    assert "not verified at start-up" in unproven[0].message
    assert [f.severity for f in proven] == ["error"]
    # --verify-keys-s 0 starts (the reads guard), where the default refuses.
    assert _serve(tmp_path, distributor_url, BRANCH_CARRIER, "--verify-keys-s", "0").exit_code == 0


@pytest.fixture
def unproven_client(distributor_url: str, tmp_path: Path) -> Iterator[tuple[TestClient[Any], dict[str, str]]]:
    """A gateway built without the start-up proof (as create_app is, in-process)."""
    mapping = parse_mapping(BRANCH_CARRIER, environ=_environ(distributor_url, tmp_path))
    with TestClient(create_app(mapping)) as client:
        yield client, _headers(mapping)


def _assert_refused(response: Any) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("key-not-unique")
    assert "several rows share one value of the key (branch, carrier)" in problem["detail"]


def test_a_get_matching_several_rows_is_refused_not_answered_at_random(unproven_client: Any) -> None:
    client, headers = unproven_client
    _assert_refused(client.get("/v1/shipments/ATL,UPS", headers=headers))
    assert client.get("/v1/shipments/XXX,NONE", headers=headers).status_code == 404


def test_a_page_that_would_skip_rows_is_refused(unproven_client: Any) -> None:
    client, headers = unproven_client
    # Sorted by (branch, carrier), the first page's last row shares its key with the next row:
    # a keyset cursor after it would skip the rest of that group (873 of 2,748 rows walked).
    _assert_refused(client.get("/v1/shipments?limit=5", headers=headers))
    _assert_refused(client.get("/v1/shipments?limit=500&sort=user", headers=headers))


def test_the_natural_key_walks_every_row_once(distributor_url: str, tmp_path: Path) -> None:
    mapping = parse_mapping(FULL_KEY, environ=_environ(distributor_url, tmp_path))
    with TestClient(create_app(mapping)) as client:
        rows, count = _walk(client, "/v1/shipments", _headers(mapping))
        one = client.get(f"/v1/shipments/{rows[0]['branch']},{rows[0]['carrier']},1", headers=_headers(mapping))
    keys = [(r["branch"], r["carrier"], r["sequence"]) for r in rows]
    assert len(set(keys)) == len(keys) == count == len(_expected_rows(distributor_url, "SHIPLOG"))
    assert one.status_code == 200 and one.json()["sequence"] == 1
