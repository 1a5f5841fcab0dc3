"""A filter on a code-mapped field selects exactly the rows whose served value satisfies it.

Stored codes are drawn at random, unknown ones ('??', 'ZZ', padded, blank) included; for
each ``unmapped`` rule and every operator the rows the API returns (and ``count=exact``)
must equal filtering the served values in Python, with a decoder written here. SQLite keeps
CHAR values as written, PostgreSQL pads and compares them without the pad: both must agree.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from scratch_db import MAPPING_HEAD, scratch_url

from gateway import create_app
from legacy_adapters.mapping import parse_mapping
from sync.state import StateDatabase

SECRET = "test-secret-that-is-long-enough-for-hs256!"
CODES = {"OP": "open", "SH": "shipped", "X": "on_hold", "IN": "invoiced"}
UNKNOWN = ["??", "ZZ", "op", "Q", "sh"]
RULES = {"null": "null", "raw": "raw", "default": "{default: unknown}", "default-known": "{default: open}"}
MAPPING = (
    MAPPING_HEAD
    + """\
      orders:
        table: ORD
        key: id
        fields:
          id: {column: ID, type: integer}
          status:
            column: STATUS
            transform: trim
            length: 2
            null_if: [""]
            map: {OP: open, SH: shipped, X: on_hold, IN: invoiced}
            unmapped: %(rule)s
"""
)


def served(code: str | None, rule: str) -> str | None:
    """What the API must serve for a stored STATUS, from the mapping's words alone."""
    if code is None or code.rstrip(" ") == "":
        return None
    code = code.rstrip(" ")
    if code in CODES:
        return CODES[code]
    return {"null": None, "raw": code, "default": "unknown", "default-known": "open"}[rule]


def matches(pattern: str, text: str, *, insensitive: bool) -> bool:
    regex = "".join(".*" if p == "*" else re.escape(p[-1]) for p in re.findall(r"\\.|\*|[^\\*]", pattern))
    return re.fullmatch(regex, text, re.DOTALL | (re.IGNORECASE if insensitive else 0)) is not None


def satisfies(value: str | None, op: str, operand: Any) -> bool:
    if op == "isnull":
        return (value is None) is operand
    if value is None:
        return False
    if op == "eq":
        return value == operand
    if op == "ne":
        return value != operand
    if op == "in":
        return value in operand
    return matches(operand, value, insensitive=op == "ilike")


TABLE = sa.Table(
    "ORD",
    sa.MetaData(),
    sa.Column("ID", sa.Integer, primary_key=True, autoincrement=False, quote=True),
    sa.Column("STATUS", sa.CHAR(2), nullable=True, quote=True),
    quote=True,
)


class Store:
    """The ORD table on one backend and a gateway per ``unmapped`` rule serving it."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        with self.engine.begin() as conn:
            TABLE.drop(conn, checkfirst=True)
            TABLE.create(conn)
        self.apps = {
            # Each with a state store of its own, never the default ./.bridgehead one.
            name: TestClient(
                create_app(
                    parse_mapping(MAPPING % {"db": url, "secret": SECRET, "rule": rule}),
                    state=StateDatabase(f"sqlite:///{Path(tempfile.mkdtemp(prefix='bh-unmapped-')) / 'state.db'}"),
                )
            )
            for name, rule in RULES.items()
        }

    def put(self, stored: list[str | None]) -> None:
        with self.engine.begin() as conn:
            conn.execute(TABLE.delete())
            conn.execute(TABLE.insert(), [{"ID": i, "STATUS": code} for i, code in enumerate(stored)])


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql-odbc", marks=pytest.mark.odbc)])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    found = Store(scratch_url(request.param, tmp_path_factory.mktemp(f"unmapped-{request.param}")))
    for client in found.apps.values():
        client.__enter__()
    yield found
    for client in found.apps.values():
        client.__exit__(None, None, None)
    found.engine.dispose()


_stored = st.lists(
    st.one_of(
        st.none(),
        st.sampled_from([*CODES, *UNKNOWN, ""]).map(lambda c: c.ljust(2)),
        st.sampled_from(["X", "??"]),  # some rows written unpadded by another program
    ),
    min_size=1,
    max_size=25,
)
_names = st.sampled_from([*CODES.values(), "unknown", *UNKNOWN])
_filters = st.one_of(
    st.tuples(st.sampled_from(["eq", "ne"]), _names),
    st.tuples(st.just("in"), st.lists(_names, min_size=1, max_size=3).map(tuple)),
    st.tuples(st.just("isnull"), st.booleans()),
    st.tuples(st.sampled_from(["like", "ilike"]), st.sampled_from(["*", "o*", "O*", "*ed", "?*", "s*", "Z*", "un*"])),
)


def _text(op: str, operand: Any) -> str:
    if op == "in":
        return ",".join(operand)
    if op == "isnull":
        return "true" if operand else "false"
    return str(operand)


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=_stored, rule=st.sampled_from(list(RULES)), flt=_filters)
def test_filters_and_counts_agree_with_served_values(
    store: Store, admin: dict[str, str], stored: list[str | None], rule: str, flt: Any
) -> None:
    store.put(stored)
    apps = store.apps
    op, operand = flt
    every = apps[rule].get("/v1/orders", params={"limit": "500", "sort": "id"}, headers=admin).json()["data"]
    assert [row["status"] for row in every] == [served(code, rule) for code in stored]

    name = "status" if op == "eq" else f"status[{op}]"
    response = apps[rule].get(
        "/v1/orders", params={name: _text(op, operand), "limit": "500", "sort": "id", "count": "exact"}, headers=admin
    )
    names = set(CODES.values()) | {"unknown" if rule == "default" else "open"}
    values = operand if op == "in" else (operand,)
    if op in ("eq", "ne", "in") and rule != "raw" and not set(values) <= names:
        assert response.status_code == 400, response.text  # a value no row can be served as: a typo
        return
    assert response.status_code == 200, response.text
    expected = [i for i, code in enumerate(stored) if satisfies(served(code, rule), op, operand)]
    body = response.json()
    assert [row["id"] for row in body["data"]] == expected
    assert body["count"] == len(expected)


def test_unknown_codes_under_the_default_rule_are_found_by_isnull(store: Store, admin: dict[str, str]) -> None:
    # The case: '??' served as null, yet isnull=true found none and ne=shipped counted them.
    store.put([None, "??", "SH", "OP", "??"])
    apps = store.apps
    null = apps["null"]
    found = null.get("/v1/orders", params={"status[isnull]": "true", "count": "exact"}, headers=admin).json()
    assert [r["id"] for r in found["data"]] == [0, 1, 4] and found["count"] == 3
    others = null.get("/v1/orders", params={"status[ne]": "shipped", "count": "exact"}, headers=admin).json()
    assert [r["id"] for r in others["data"]] == [3] and others["count"] == 1
    raw = apps["raw"].get("/v1/orders", params={"status": "??"}, headers=admin).json()
    assert [(r["id"], r["status"]) for r in raw["data"]] == [(1, "??"), (4, "??")]


def test_unmapped_without_a_map_is_a_mapping_error() -> None:
    from legacy_adapters.exceptions import MappingError

    text = MAPPING.replace("            map: {OP: open, SH: shipped, X: on_hold, IN: invoiced}\n", "")
    with pytest.raises(MappingError, match="has no map") as caught:
        parse_mapping(text % {"db": "x.db", "secret": SECRET, "rule": "raw"})
    assert caught.value.path == "versions.v1.resources.orders.fields.status.unmapped"


def test_like_on_raw_numeric_codes_is_refused_not_guessed() -> None:
    from legacy_adapters.exceptions import QueryError
    from legacy_adapters.query.filters import Comparison
    from legacy_adapters.query.like import parse_like
    from legacy_adapters.query.resource import bind_version

    text = (
        (MAPPING % {"db": "x.db", "secret": SECRET, "rule": "raw"})
        .replace("map: {OP: open, SH: shipped, X: on_hold, IN: invoiced}", "map: {1: open, 2: shipped}")
        .replace('            transform: trim\n            length: 2\n            null_if: [""]\n', "")
    )
    status = bind_version(parse_mapping(text), "v1")["orders"].fields["status"]
    with pytest.raises(QueryError, match="cannot match status's raw numeric codes"):
        Comparison(status, "like", parse_like("7*", insensitive=False), "status[like]").clause()
    assert Comparison(status, "eq", "7", "status").clause() is not None  # equality on a raw code still works
