"""A second legacy schema, mapped by hand with the date/time codecs, served end to end.

The AS/400-style distributor (``legacy_adapters.samples.distributor``) stores every date
as a NUMERIC in a different layout (CYYMMDD, YYYYDDD, CYYDDD, YYMMDD), times as HHMM and
HHMMSS, flags as 'T'/'F', unknown statuses as '??', money as DECIMAL(11,2), and has keyless
tables and names with spaces and reserved words. Every listing, filter, sort and page the
API serves on each backend is compared with the generator's stored rows decoded here by a
tiny reference decoder written from the formats' definitions, not with our codecs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from db_backends import JWT_SECRET
from litestar.testing import TestClient
from scratch_db import scratch_url

from gateway import create_app
from legacy_adapters.mapping import parse_mapping
from legacy_adapters.samples.distributor import create_distributor, distributor_rows
from sync.state import StateDatabase

ROWS, SEED = 300, 19
CHICAGO = ZoneInfo("America/Chicago")

MAPPING = """
database: {url: "${URL}"}
auth: {issuer: bridgehead-demo, audience: bridgehead, hs256_secret: "${SECRET}"}
versions:
  v1:
    resources:
      customers:
        table: CUSTOMERS
        key: customer_no
        fields:
          customer_no: {column: CUSNO, type: integer}
          name: {column: CUSNAME, transform: trim}
          region: {column: REGION, transform: trim, length: 3, nullable: true}
          active: {column: ACTIVE, type: boolean, transform: boolean, bool_values: [T, F]}
          credit_limit: {column: CRLIMIT, type: decimal, decimals: 2}
          created: {column: CRTDT, type: date, date: cyymmdd}
          email: {column: EMAIL, nullable: true}
          entered_by: {column: USER, transform: trim}
      items:
        table: ITEM MASTER
        key: item_no
        fields:
          item_no: {column: ITEMNO, transform: trim, length: 15}
          description: {column: DESC, transform: trim}
          list_price: {column: LIST PRICE, type: decimal, decimals: 2}
          last_received: {column: LRCVDT, type: date, date: cyyddd, null_if: [0]}
          last_received_at:
            {column: LRCVDT, type: datetime, date: "pattern:%C%y%j", time_column: LRCVTM, time: hhmmss,
             timezone: America/Chicago, null_if: [0]}
          discontinued: {column: DISCONT, type: boolean, transform: yes_no}
      orders:
        table: ORDER
        key: order_no
        fields:
          order_no: {column: ORDNO, type: integer}
          customer_no: {column: CUSNO, type: integer}
          ordered_on: {column: ORDDT, type: date, date: yyyyddd}
          ordered_at:
            {column: ORDDT, type: datetime, date: yyyyddd, time_column: ORDTM, time: hhmm, timezone: America/Chicago}
          status:
            {column: STATUS, transform: trim, length: 2,
             map: {OP: open, PK: picking, SH: shipped, IN: invoiced, CN: cancelled}}
          status_code:
            {column: STATUS, transform: trim, length: 2, unmapped: raw,
             map: {OP: open, PK: picking, SH: shipped, IN: invoiced, CN: cancelled}}
          rush: {column: RUSH, type: boolean, transform: boolean, bool_values: [T, F]}
          total: {column: TOTAL, type: decimal, decimals: 2}
          shipped_on: {column: SHIP DATE, type: date, date: cyymmdd, nullable: true}
          entered_by: {column: USER, transform: trim, length: 10}
        relations:
          lines: {resource: lines, "on": {order_no: order_no}, many: true}
          customer: {resource: customers, "on": {customer_no: customer_no}, many: false}
      lines:
        table: ORDLINES
        key: [order_no, line]
        fields:
          order_no: {column: ORDNO, type: integer}
          line: {column: LINE, type: integer}
          item_no: {column: ITEMNO, transform: trim, length: 15}
          quantity: {column: QTY, type: integer}
          amount: {column: LINE AMT, type: decimal, decimals: 2}
          due: {column: DUE DT, type: date, date: yymmdd}
          promised: {column: PROMDT, type: date, date: yyyymmdd}
          backordered: {column: BACKORD, type: boolean, transform: yes_no}
      shipments:
        table: SHIPLOG
        key: [branch, carrier, seq]
        fields:
          branch: {column: BRANCH, transform: trim, length: 3}
          carrier: {column: CARRIER, transform: trim, length: 4}
          seq: {column: SEQ, type: integer}
          order_no: {column: ORDNO, type: integer}
          shipped_at:
            {column: SHPDT, type: datetime, date: cyymmdd, time_column: SHPTM, time: hhmm, timezone: America/Chicago}
          weight: {column: WEIGHT, type: decimal, decimals: 2}
          signed: {column: SIGNED, type: boolean, transform: boolean, bool_values: [T, F]}
          entered_by: {column: USER, transform: trim}
          note: {column: NOTE, nullable: true}
"""

# -- the reference decoder: each format from its definition, nothing shared with the gateway ------


def cyymmdd(n: int) -> dt.date:
    return dt.date(1900 + n // 10000, n // 100 % 100, n % 100)


def yyyyddd(n: int) -> dt.date:
    return dt.date(n // 1000, 1, 1) + dt.timedelta(days=n % 1000 - 1)


def cyyddd(n: int) -> dt.date:
    return dt.date(1900 + n // 1000, 1, 1) + dt.timedelta(days=n % 1000 - 1)


def yymmdd(n: int) -> dt.date:
    yy = n // 10000
    return dt.date((1900 if yy >= 40 else 2000) + yy, n // 100 % 100, n % 100)


def yyyymmdd(n: int) -> dt.date:
    return dt.date(n // 10000, n // 100 % 100, n % 100)


def local(day: dt.date, hour: int, minute: int, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=CHICAGO)


STATUS = {"OP": "open", "PK": "picking", "SH": "shipped", "IN": "invoiced", "CN": "cancelled"}


def expected_rows() -> dict[str, list[dict[str, Any]]]:
    data = distributor_rows(ROWS, SEED)
    money = lambda v: Decimal(v).quantize(Decimal("0.01"))  # noqa: E731
    out: dict[str, list[dict[str, Any]]] = {}
    out["customers"] = [
        {
            "customer_no": r["CUSNO"],
            "name": r["CUSNAME"].rstrip(),
            "region": r["REGION"].rstrip(),
            "active": r["ACTIVE"] == "T",
            "credit_limit": money(r["CRLIMIT"]),
            "created": cyymmdd(r["CRTDT"]),
            "email": r["EMAIL"],
            "entered_by": r["USER"].rstrip(),
        }
        for r in data["CUSTOMERS"]
    ]
    out["items"] = [
        {
            "item_no": r["ITEMNO"].rstrip(),
            "description": r["DESC"].rstrip(),
            "list_price": money(r["LIST PRICE"]),
            "last_received": cyyddd(r["LRCVDT"]) if r["LRCVDT"] else None,
            "last_received_at": local(
                cyyddd(r["LRCVDT"]), r["LRCVTM"] // 10000, r["LRCVTM"] // 100 % 100, r["LRCVTM"] % 100
            )
            if r["LRCVDT"]
            else None,
            "discontinued": r["DISCONT"] == "Y",
        }
        for r in data["ITEM MASTER"]
    ]
    out["orders"] = [
        {
            "order_no": r["ORDNO"],
            "customer_no": r["CUSNO"],
            "ordered_on": yyyyddd(r["ORDDT"]),
            "ordered_at": local(yyyyddd(r["ORDDT"]), r["ORDTM"] // 100, r["ORDTM"] % 100),
            "status": STATUS.get(r["STATUS"].rstrip()),
            "status_code": STATUS.get(r["STATUS"].rstrip(), r["STATUS"].rstrip()),
            "rush": r["RUSH"] == "T",
            "total": money(r["TOTAL"]),
            "shipped_on": cyymmdd(r["SHIP DATE"]) if r["SHIP DATE"] is not None else None,
            "entered_by": r["USER"].rstrip(),
        }
        for r in data["ORDER"]
    ]
    out["lines"] = [
        {
            "order_no": r["ORDNO"],
            "line": r["LINE"],
            "item_no": r["ITEMNO"].rstrip(),
            "quantity": r["QTY"],
            "amount": money(r["LINE AMT"]),
            "due": yymmdd(r["DUE DT"]),
            "promised": yyyymmdd(r["PROMDT"]),
            "backordered": r["BACKORD"] == "Y",
        }
        for r in data["ORDLINES"]
    ]
    out["shipments"] = [
        {
            "branch": r["BRANCH"].rstrip(),
            "carrier": r["CARRIER"].rstrip(),
            "seq": r["SEQ"],
            "order_no": r["ORDNO"],
            "shipped_at": local(cyymmdd(r["SHPDT"]), r["SHPTM"] // 100, r["SHPTM"] % 100),
            "weight": money(r["WEIGHT"]),
            "signed": r["SIGNED"] == "T",
            "entered_by": r["USER"].rstrip(),
            "note": r["NOTE"],
        }
        for r in data["SHIPLOG"]
    ]
    return out


EXPECTED = expected_rows()
KEYS = {
    "customers": ("customer_no",),
    "items": ("item_no",),
    "orders": ("order_no",),
    "lines": ("order_no", "line"),
    "shipments": ("branch", "carrier", "seq"),
}
TYPES = {
    "date": {"created", "last_received", "ordered_on", "shipped_on", "due", "promised"},
    "datetime": {"last_received_at", "ordered_at", "shipped_at"},
    "decimal": {"credit_limit", "list_price", "total", "amount", "weight"},
}

BACKENDS = ["sqlite", pytest.param("postgresql-odbc", marks=pytest.mark.odbc)]
EXTRA = [pytest.param("sqlite-odbc", marks=pytest.mark.odbc), pytest.param("mariadb-odbc", marks=pytest.mark.odbc)]


@pytest.fixture(scope="module", params=[*BACKENDS, *EXTRA])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Any]]:
    url = scratch_url(request.param, tmp_path_factory.mktemp(f"distributor-{request.param}"))
    create_distributor(url, rows=ROWS, seed=SEED)
    mapping = parse_mapping(MAPPING, environ={"URL": url, "SECRET": JWT_SECRET})
    # A state store of its own: never the default ./.bridgehead one `make demo` uses.
    state = StateDatabase(f"sqlite:///{tmp_path_factory.mktemp('state') / 'state.db'}")
    with TestClient(create_app(mapping, state=state)) as client:
        yield client


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    """An API row with its ISO strings parsed, so it compares with the reference values."""
    out = dict(row)
    for name, value in row.items():
        if value is None:
            continue
        if name in TYPES["date"]:
            out[name] = dt.date.fromisoformat(value)
        elif name in TYPES["datetime"]:
            out[name] = dt.datetime.fromisoformat(value)
        elif name in TYPES["decimal"]:
            assert isinstance(value, Decimal) and value.as_tuple().exponent == -2, (name, value)  # DECIMAL(11,2)
    return out


def fetch(client: TestClient[Any], headers: dict[str, str], resource: str, limit: int = 41, **params: str) -> Any:
    """Every row of a listing, walking the cursor pages; also the ``count=exact`` of the first page."""
    query = {**params, "limit": str(limit), "count": "exact"}
    rows: list[dict[str, Any]] = []
    count = None
    while True:
        response = client.get(f"/v1/{resource}", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = json.loads(response.text, parse_float=Decimal)  # exact decimals, trailing zeros kept
        rows.extend(_decode(r) for r in body["data"])
        count = body["count"] if count is None else count
        assert body["count"] == count  # the same filter counts the same on every page
        if not body["next_cursor"]:
            return rows, count
        query = {**params, "limit": str(limit), "count": "exact", "cursor": body["next_cursor"]}


def key_of(resource: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    return lambda row: tuple(row[k] for k in KEYS[resource])


@pytest.mark.parametrize("resource", list(EXPECTED))
def test_every_row_is_served_as_decoded(api: TestClient[Any], admin: dict[str, str], resource: str) -> None:
    rows, count = fetch(api, admin, resource)
    expected = sorted(EXPECTED[resource], key=key_of(resource))
    assert count == len(expected)
    assert rows == expected


WHEN = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-6)))
SOME_DUE = EXPECTED["lines"][7]["due"]
FILTERS: list[tuple[str, dict[str, str], Callable[[dict[str, Any]], bool]]] = [
    ("orders", {"status": "shipped"}, lambda r: r["status"] == "shipped"),
    ("orders", {"status[ne]": "shipped"}, lambda r: r["status"] not in (None, "shipped")),
    ("orders", {"status[isnull]": "true"}, lambda r: r["status"] is None),
    ("orders", {"status[in]": "open,picking"}, lambda r: r["status"] in ("open", "picking")),
    ("orders", {"status[ilike]": "*ED"}, lambda r: r["status"] is not None and r["status"].endswith("ed")),
    ("orders", {"status_code": "??"}, lambda r: r["status_code"] == "??"),
    ("orders", {"status_code[ne]": "open"}, lambda r: r["status_code"] != "open"),
    ("orders", {"status_code[like]": "?*"}, lambda r: r["status_code"].startswith("?")),
    ("orders", {"ordered_on[gte]": "2025-06-01"}, lambda r: r["ordered_on"] >= dt.date(2025, 6, 1)),
    ("orders", {"ordered_on[lt]": "2024-03-01"}, lambda r: r["ordered_on"] < dt.date(2024, 3, 1)),
    ("orders", {"ordered_at[gt]": WHEN.isoformat()}, lambda r: r["ordered_at"] > WHEN),
    ("orders", {"ordered_at[lte]": "2024-07-04T15:00:00Z"},
     lambda r: r["ordered_at"] <= dt.datetime(2024, 7, 4, 15, tzinfo=dt.UTC)),
    ("orders", {"shipped_on[isnull]": "true"}, lambda r: r["shipped_on"] is None),
    ("orders", {"shipped_on[gte]": "2025-01-01"},
     lambda r: r["shipped_on"] is not None and r["shipped_on"] >= dt.date(2025, 1, 1)),
    ("orders", {"total[gt]": "1000.005"}, lambda r: r["total"] > Decimal("1000.005")),
    ("orders", {"total[lte]": "500"}, lambda r: r["total"] <= 500),
    ("orders", {"total": "1000.005"}, lambda r: False),
    ("orders", {"rush": "true"}, lambda r: r["rush"]),
    ("orders", {"entered_by[like]": "J*"}, lambda r: r["entered_by"].startswith("J")),
    ("orders", {"entered_by[ilike]": "*o*"}, lambda r: "o" in r["entered_by"].lower()),
    ("orders", {"entered_by[in]": "QPGMR,OPS01"}, lambda r: r["entered_by"] in ("QPGMR", "OPS01")),
    ("customers", {"active": "false"}, lambda r: not r["active"]),
    ("customers", {"created[lt]": "2010-01-01"}, lambda r: r["created"] < dt.date(2010, 1, 1)),
    ("customers", {"credit_limit[gte]": "25000.5"}, lambda r: r["credit_limit"] >= Decimal("25000.5")),
    ("customers", {"email[isnull]": "true"}, lambda r: r["email"] is None),
    ("customers", {"region": "NE"}, lambda r: r["region"] == "NE"),
    ("customers", {"name[ilike]": "*SUPPLY*"}, lambda r: "supply" in r["name"].lower()),
    ("items", {"last_received[isnull]": "true"}, lambda r: r["last_received"] is None),
    ("items", {"last_received_at[gte]": "2025-01-01T00:00:00Z"},
     lambda r: r["last_received_at"] is not None and r["last_received_at"] >= dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),
    ("items", {"discontinued": "true"}, lambda r: r["discontinued"]),
    ("items", {"description[like]": "Bolt*"}, lambda r: r["description"].startswith("Bolt")),
    ("lines", {"promised[lt]": "2024-06-01"}, lambda r: r["promised"] < dt.date(2024, 6, 1)),
    ("lines", {"due": SOME_DUE.isoformat()}, lambda r: r["due"] == SOME_DUE),
    ("lines", {"amount[gt]": "5000"}, lambda r: r["amount"] > 5000),
    ("lines", {"backordered": "true", "quantity[gte]": "25"}, lambda r: r["backordered"] and r["quantity"] >= 25),
    ("shipments", {"shipped_at[lt]": "2024-06-01T00:00:00Z"},
     lambda r: r["shipped_at"] < dt.datetime(2024, 6, 1, tzinfo=dt.UTC)),
    ("shipments", {"carrier": "UPS"}, lambda r: r["carrier"] == "UPS"),
    ("shipments", {"signed": "false", "branch[in]": "ATL,SEA"},
     lambda r: not r["signed"] and r["branch"] in ("ATL", "SEA")),
    ("shipments", {"note[isnull]": "false"}, lambda r: r["note"] is not None),
    ("shipments", {"weight[lte]": "12.5"}, lambda r: r["weight"] <= Decimal("12.5")),
]  # fmt: skip


@pytest.mark.parametrize(("resource", "params", "keep"), FILTERS, ids=[f"{r}?{p}" for r, p, _ in FILTERS])
def test_filters_select_the_rows_whose_decoded_values_match(
    api: TestClient[Any], admin: dict[str, str], resource: str, params: dict[str, str], keep: Any
) -> None:
    rows, count = fetch(api, admin, resource, **params)
    expected = sorted((r for r in EXPECTED[resource] if keep(r)), key=key_of(resource))
    assert rows == expected
    assert count == len(expected)
    # Each filter is chosen to split the data: neither none nor all (but the one that matches nothing).
    assert 0 < len(expected) < len(EXPECTED[resource]) or params == {"total": "1000.005"}


SORTS = [
    ("orders", "ordered_at"),
    ("orders", "-total"),
    ("orders", "-ordered_on,customer_no"),
    ("customers", "created"),
    ("customers", "-credit_limit"),
    ("items", "-last_received_at"),
    ("lines", "-promised,quantity"),
    ("shipments", "shipped_at"),
    ("orders", "shipped_on"),  # NULL sorts lowest on every backend (issue 11, item 8)
    ("orders", "-shipped_on"),
]


def _python_sort(resource: str, spec: str) -> list[tuple[Any, ...]]:
    rows = sorted(EXPECTED[resource], key=key_of(resource))  # the key breaks ties, ascending
    for item in reversed(spec.split(",")):
        name = item.lstrip("-")
        # A stored sentinel (0 = never received) is the lowest stored value: its null sorts first.
        rows.sort(key=lambda r: (r[name] is not None, r[name] if r[name] is not None else 0), reverse=item[0] == "-")
    return [key_of(resource)(r) for r in rows]


@pytest.mark.parametrize(("resource", "sort"), SORTS, ids=[f"{r}?sort={s}" for r, s in SORTS])
def test_sorted_pages_come_in_the_decoded_order(
    api: TestClient[Any], admin: dict[str, str], resource: str, sort: str
) -> None:
    rows, _ = fetch(api, admin, resource, limit=29, sort=sort)
    assert [key_of(resource)(r) for r in rows] == _python_sort(resource, sort)


@pytest.mark.parametrize(
    ("resource", "params", "reason"),
    [
        ("lines", {"due[gte]": "2025-01-01"}, "do not sort like its API values"),  # YYMMDD wraps at its pivot
        ("lines", {"sort": "due"}, "do not sort like its API values"),
        ("orders", {"status": "lost"}, "is not one of"),
    ],
)
def test_what_cannot_be_answered_honestly_is_refused(
    api: TestClient[Any], admin: dict[str, str], resource: str, params: dict[str, str], reason: str
) -> None:
    response = api.get(f"/v1/{resource}", params=params, headers=admin)
    assert response.status_code == 400
    assert reason in response.json()["errors"][0]["detail"]


def test_keys_and_embeds_through_reserved_and_spaced_names(api: TestClient[Any], admin: dict[str, str]) -> None:
    order = next(r for r in EXPECTED["orders"] if r["status_code"] == "??")
    response = api.get(f"/v1/orders/{order['order_no']}", params={"embed": "lines,customer"}, headers=admin)
    assert response.status_code == 200, response.text
    body = json.loads(response.text, parse_float=Decimal)
    assert body["status"] is None and body["status_code"] == "??"
    lines = sorted((r for r in EXPECTED["lines"] if r["order_no"] == order["order_no"]), key=key_of("lines"))
    assert [_decode(line) for line in body["lines"]] == lines
    assert body["customer"]["customer_no"] == order["customer_no"]
    line = lines[0]
    one = api.get(f"/v1/lines/{line['order_no']},{line['line']}", headers=admin)
    assert _decode(json.loads(one.text, parse_float=Decimal)) == line
    ship = EXPECTED["shipments"][0]
    got = api.get(f"/v1/shipments/{ship['branch']},{ship['carrier']},{ship['seq']}", headers=admin)
    assert got.status_code == 200 and _decode(json.loads(got.text, parse_float=Decimal)) == ship
