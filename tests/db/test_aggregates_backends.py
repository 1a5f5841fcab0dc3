"""Aggregates on every backend equal what the raw table says, decoded here from the mapping's words.

Each test reads JOBMAST straight from the backend (no gateway code), decodes the stored
values with the small decoders below (written from the demo mapping's comments, not
imported from the gateway), computes the groups and aggregates in Python and compares
them with ``GET /v1/jobs/aggregate`` on that backend: admin and portal tokens, an
unknown status code, sentinel and impossible dates, having, sorts and cursor pages.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient
from scratch_db import SCRATCH_BACKENDS, scratch_url

from gateway import create_app
from legacy_adapters.mapping import parse_mapping
from sync.state import StateDatabase
from tests.conftest import TokenFactory

Client = TestClient[Any]
STATUS = {"R": "released", "H": "on_hold", "C": "complete", "P": "planned"}


def _date(raw: Any) -> dt.date | None:
    number = int(raw)
    if number in (0, 99999999):
        return None
    try:
        return dt.date(number // 10000, number // 100 % 100, number % 100)
    except ValueError:  # 20230231: served as null
        return None


def _flag(raw: str) -> bool | None:
    return {"Y": True, "N": False}.get(raw.rstrip(" "))


@pytest.fixture(scope="module")
def jobs(backend_url: str) -> list[dict[str, Any]]:
    """Every visible job, decoded here: soft-deleted rows (DELFLG = 'Y') are not in the API."""
    engine = sa.create_engine(backend_url)
    try:
        with engine.connect() as conn:
            q = conn.dialect.identifier_preparer.quote
            columns = ("CUSTNO", "JSTAT", "ORDDT", "DUEDT", "RUSHFL", "QTY", "DELFLG")
            raw = conn.exec_driver_sql(f"SELECT {', '.join(q(c) for c in columns)} FROM {q('JOBMAST')}").all()
    finally:
        engine.dispose()
    return [
        {
            "customer_id": custno.rstrip(" "),
            "status": STATUS.get(jstat.rstrip(" ")),
            "ordered_on": _date(orddt),
            "due_date": _date(duedt),
            "rush": _flag(rushfl),
            "quantity": Decimal(int(qty)).scaleb(-2),
        }
        for custno, jstat, orddt, duedt, rushfl, qty, delflg in raw
        if delflg != "Y"
    ]


def _month(d: dt.date | None) -> str | None:
    return None if d is None else f"{d.year:04d}-{d.month:02d}"


def _week(d: dt.date | None) -> str | None:
    return None if d is None else (d - dt.timedelta(days=d.weekday())).isoformat()


def expected(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any], name: str) -> dict[Any, dict[str, Any]]:
    """Every aggregate of the test's request, per group, in the API's form."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    out = {}
    for value, members in groups.items():
        quantities = [m["quantity"] for m in members]
        dues = [m["due_date"] for m in members if m["due_date"] is not None]
        average = (sum(quantities, Decimal(0)) / len(quantities)).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
        out[value] = {
            "group": {name: value},
            "count": len(members),
            "count_distinct": {"customer_id": len({m["customer_id"] for m in members})},
            "sum": {"quantity": float(sum(quantities, Decimal(0)))},
            "avg": {"quantity": float(average)},
            "min": {"due_date": min(dues).isoformat() if dues else None},
            "max": {"due_date": max(dues).isoformat() if dues else None},
        }
    return out


ALL = "count_distinct=customer_id&sum=quantity&avg=quantity&min=due_date&max=due_date"


def _pages(client: Client, path: str, headers: dict[str, str]) -> Iterator[dict[str, Any]]:
    url: str | None = path
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        yield from body["data"]
        url = f"{path}&cursor={body['next_cursor']}" if body["next_cursor"] else None


def _by_group(data: list[dict[str, Any]], name: str) -> dict[Any, dict[str, Any]]:
    return {row["group"][name]: row for row in data}


def test_status_groups_match_the_raw_table(
    db_client: Client, admin: dict[str, str], jobs: list[dict[str, Any]]
) -> None:
    response = db_client.get(f"/v1/jobs/aggregate?group_by=status&{ALL}", headers=admin)
    assert response.status_code == 200, response.text
    got = _by_group(response.json()["data"], "status")
    want = expected(jobs, lambda r: r["status"], "status")
    assert got == want
    assert want[None]["count"] > 0, "the demo holds unknown status codes ('X'), served and grouped as null"
    # Groups come in their served order, null lowest, on every engine.
    assert [row["group"]["status"] for row in response.json()["data"]] == [None, *sorted(k for k in want if k)]


@pytest.mark.parametrize(
    ("group", "key"),
    [
        ("due_date:month", lambda r: _month(r["due_date"])),
        ("due_date:year", lambda r: r["due_date"] and r["due_date"].year),
        ("due_date:week", lambda r: _week(r["due_date"])),
        ("due_date", lambda r: r["due_date"] and r["due_date"].isoformat()),
        ("ordered_at:month", lambda r: _month(r["ordered_on"])),
        ("rush", lambda r: r["rush"]),
        ("customer_id", lambda r: r["customer_id"]),
    ],
    ids=["month", "year", "week", "day", "pair-month", "yes-no", "trimmed-text"],
)
def test_groups_paged_by_cursor_match_the_raw_table(
    db_client: Client, admin: dict[str, str], jobs: list[dict[str, Any]], group: str, key: Callable[..., Any]
) -> None:
    got = list(_pages(db_client, f"/v1/jobs/aggregate?group_by={group}&{ALL}&limit=97", admin))
    want = expected(jobs, key, group)
    assert len(got) == len(want) > 1
    assert _by_group(got, group) == want
    values = [row["group"][group] for row in got]
    assert values == sorted(values, key=lambda v: (v is not None, v))  # null lowest, pages in order


def test_portal_token_aggregates_its_own_rows_only(
    db_client: Client, token: TokenFactory, jobs: list[dict[str, Any]]
) -> None:
    portal = {"Authorization": f"Bearer {token('jobs:read', sub='portal', customer_id='C0042')}"}
    own = [r for r in jobs if r["customer_id"] == "C0042"]
    assert own and len(own) < len(jobs)
    response = db_client.get(f"/v1/jobs/aggregate?group_by=status&{ALL}", headers=portal)
    assert response.status_code == 200, response.text
    assert _by_group(response.json()["data"], "status") == expected(own, lambda r: r["status"], "status")
    totals = db_client.get("/v1/jobs/aggregate?sum=quantity&customer_id=C0001", headers=portal).json()["data"]
    assert totals == [{"count": 0, "sum": {"quantity": None}}], "another customer's rows stay out of reach"


def test_filters_having_and_sort_by_an_aggregate(
    db_client: Client, admin: dict[str, str], jobs: list[dict[str, Any]]
) -> None:
    # ne never matches a null status (an unknown code): a null differs from nothing.
    rows = [r for r in jobs if r["status"] not in (None, "complete") and r["due_date"] is not None]
    query = "group_by=customer_id&sum=quantity&status[ne]=complete&due_date[isnull]=false"
    path = f"/v1/jobs/aggregate?{query}&having.count[gte]=2&sort=-sum.quantity&limit=5"
    got = list(_pages(db_client, path, admin))
    sums: dict[str, list[Decimal]] = defaultdict(list)
    for row in rows:
        sums[row["customer_id"]].append(row["quantity"])
    want = sorted(
        ((c, len(q), sum(q, Decimal(0))) for c, q in sums.items() if len(q) >= 2), key=lambda t: (-t[2], t[0])
    )
    assert [(g["group"]["customer_id"], g["count"], Decimal(str(g["sum"]["quantity"]))) for g in got] == want
    assert len(want) > 5, "several pages"
    having = db_client.get(f"/v1/jobs/aggregate?{query}&having.avg.quantity[gt]=1500.004&avg=quantity", headers=admin)
    assert having.status_code == 200, having.text
    expect = {c for c, q in sums.items() if sum(q, Decimal(0)) / len(q) > Decimal("1500.004")}
    assert {g["group"]["customer_id"] for g in having.json()["data"]} == expect


# -- codes are compared exactly on every engine -----------------------------------------------------

CASE_MAPPING = """
database: {url: "%(db)s"}
auth: {issuer: bridgehead-demo, audience: bridgehead, hs256_secret: "test-secret-that-is-long-enough-for-hs256!"}
versions:
  v1:
    resources:
      orders:
        table: ORDCASE
        key: id
        fields:
          id: {column: ID, type: integer}
          status: {column: STATUS, transform: trim, length: 2, map: {OP: open, SH: shipped}, unmapped: %(rule)s}
          amount: {column: AMT, type: decimal, scale: 2}
"""
CASE_TABLE = sa.Table(
    "ORDCASE",
    sa.MetaData(),
    sa.Column("ID", sa.Integer, primary_key=True, autoincrement=False, quote=True),
    sa.Column("STATUS", sa.CHAR(2), nullable=True, quote=True),
    sa.Column("AMT", sa.Integer, nullable=False, quote=True),
    quote=True,
)
CASE_ROWS = [("OP", 100), ("op", 250), ("SH", 1), ("sh", 7), ("Op", 3), ("OP", 11), (None, 5)]


@pytest.fixture(
    scope="module",
    params=SCRATCH_BACKENDS,
)
def case_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = scratch_url(request.param, tmp_path_factory.mktemp(f"codes-{request.param}"))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        CASE_TABLE.drop(conn, checkfirst=True)
        CASE_TABLE.create(conn)
        conn.execute(CASE_TABLE.insert(), [{"ID": i, "STATUS": s, "AMT": a} for i, (s, a) in enumerate(CASE_ROWS)])
    engine.dispose()
    yield url


@pytest.mark.parametrize("rule", ["null", "raw"])
def test_codes_group_and_filter_case_exactly(case_url: str, admin: dict[str, str], tmp_path: Path, rule: str) -> None:
    """MariaDB compares 'op' = 'OP' by default; the API serves 'op' as an unknown code everywhere."""
    mapping = parse_mapping(CASE_MAPPING % {"db": case_url, "rule": rule})
    with TestClient(create_app(mapping, state=StateDatabase(f"sqlite:///{tmp_path / 'state.db'}"))) as client:
        served = {"OP": "open", "SH": "shipped"}
        names = [served.get(s or "", (s if rule == "raw" else None) if s else None) for s, _ in CASE_ROWS]
        totals: dict[Any, list[int]] = defaultdict(list)
        for name, (_, amount) in zip(names, CASE_ROWS, strict=True):
            totals[name].append(amount)
        got = client.get("/v1/orders/aggregate?group_by=status&sum=amount", headers=admin)
        assert got.status_code == 200, got.text
        want = {k: {"count": len(v), "sum": {"amount": sum(v) / 100}} for k, v in totals.items()}
        assert {r["group"]["status"]: {"count": r["count"], "sum": r["sum"]} for r in got.json()["data"]} == want
        listed = client.get("/v1/orders?status=open&count=exact", headers=admin).json()
        assert listed["count"] == 2 and {r["id"] for r in listed["data"]} == {0, 5}
        filtered = client.get("/v1/orders/aggregate?status[in]=open,shipped&sum=amount", headers=admin).json()
        assert filtered["data"] == [{"count": 3, "sum": {"amount": 1.12}}]
        if rule == "raw":
            raw = client.get("/v1/orders?status=op&count=exact", headers=admin).json()
            assert raw["count"] == 1 and raw["data"][0]["id"] == 1
