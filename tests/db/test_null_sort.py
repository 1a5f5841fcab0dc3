"""Sorting and keyset paging over columns that hold NULL, on real backends.

A page boundary on a NULL sort value was a 500 (``None`` into ``DUEDT > ?``);
the mapping's ``nullable`` decided sortability. Now NULL sorts lowest on every
backend, the keyset predicate compares it with IS NULL, and walking every page
gives every row once, in order, whatever the sort, the page size or the NULLs.
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from db_backends import mapping_for, prepared_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from gateway import create_app
from legacy_adapters.database import Database

RESOURCE = """\
      nullsort:
        table: NULLSORT
        key: k
        anonymous: true
        fields:
          k: {column: K, type: integer}
          a: {column: A, type: integer, nullable: true}
          s: {column: S, type: string, nullable: true}
          # Neither says nullable, yet the legacy data holds NULL in both (the DUEDT case).
          d: {column: D, type: date, transform: yyyymmdd, null_if: [0]}
          q: {column: Q, type: decimal, scale: 2}
          # A NUMERIC column: the driver hands over Decimal (float on SQLite), served as it is.
          n: {column: N, type: decimal, nullable: true}
"""
COLUMNS = {"k": "K", "a": "A", "s": "S", "d": "D", "q": "Q", "n": "N"}
NULL_SORT_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql-odbc", id="postgresql-odbc", marks=pytest.mark.odbc),
    pytest.param("mariadb-odbc", id="mariadb-odbc", marks=pytest.mark.odbc),
]


class NullTable:
    """The NULLSORT table on one backend and the app serving it."""

    def __init__(self, url: str, tmp: Path) -> None:
        mapping = mapping_for(url, tmp, resources=RESOURCE)
        self.database = Database(mapping.database)
        self.table = sa.Table(
            "NULLSORT",
            sa.MetaData(),
            sa.Column("K", sa.Integer, primary_key=True, autoincrement=False, quote=True),
            *(sa.Column(c, sa.String(10) if c == "S" else sa.Integer, quote=True) for c in ("A", "S", "D", "Q")),
            sa.Column("N", sa.Numeric(12, 4), quote=True),
            quote=True,
        )
        self.table.drop(self.database.engine, checkfirst=True)
        self.table.create(self.database.engine)
        self.client = TestClient(create_app(mapping))

    def fill(self, rows: list[dict[str, Any]]) -> None:
        with self.database.engine.begin() as conn:
            conn.execute(sa.delete(self.table))
            if rows:
                conn.execute(sa.insert(self.table), [{COLUMNS[k]: v for k, v in row.items()} for row in rows])

    def walk(self, sort: str, limit: int) -> list[int]:
        """Every row's key, page after page, following next_cursor."""
        keys: list[int] = []
        query = {"sort": sort, "limit": str(limit), "fields": "k"}
        for _ in range(200):
            response = self.client.get(f"/v1/nullsort?{urllib.parse.urlencode(query)}")
            assert response.status_code == 200, response.text
            body = response.json()
            keys.extend(row["k"] for row in body["data"])
            if body["next_cursor"] is None:
                return keys
            query["cursor"] = body["next_cursor"]
        raise AssertionError("more pages than rows")


@pytest.fixture(scope="module", params=NULL_SORT_BACKENDS)
def null_table(
    request: pytest.FixtureRequest, demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NullTable]:
    case_id = request.param
    tmp = tmp_path_factory.mktemp(f"nullsort-{case_id}")
    url = (
        f"sqlite:///{tmp / 'nulls.db'}"
        if case_id == "sqlite"
        else prepared_url(case_id, demo_db_path, tmp_path_factory)
    )
    table = NullTable(url, tmp)
    with table.client:
        yield table
    table.table.drop(table.database.engine)
    table.database.dispose()


def expected_order(rows: list[dict[str, Any]], sort: list[tuple[str, bool]]) -> list[int]:
    """The documented order: stored values, NULL lowest (first ascending, last descending), then the key."""

    def compare(x: dict[str, Any], y: dict[str, Any]) -> int:
        for name, descending in [*sort, ("k", False)]:
            a, b = x[name], y[name]
            if a == b:
                continue
            low = -1 if (a is None or (b is not None and a < b)) else 1
            return -low if descending else low
        return 0

    return [row["k"] for row in sorted(rows, key=functools.cmp_to_key(compare))]


row_values = st.fixed_dictionaries(
    {
        "a": st.none() | st.integers(-3, 3),
        "s": st.none() | st.text("abc", max_size=2),
        "d": st.none() | st.sampled_from([0, 20260101, 20260102, 20260315]),
        "q": st.none() | st.integers(-2, 2),
        "n": st.none() | st.sampled_from([Decimal("-99.0001"), Decimal("0"), Decimal("0.0001"), Decimal("12.5")]),
    }
)
sorts = st.lists(st.tuples(st.sampled_from(["a", "s", "d", "q", "n", "k"]), st.booleans()), min_size=1, max_size=3)


@settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(row_values, max_size=24), sort=sorts, limit=st.integers(1, 7))
def test_every_page_walk_is_the_full_sorted_list(
    null_table: NullTable, values: list[dict[str, Any]], sort: list[tuple[str, bool]], limit: int
) -> None:
    rows = [{"k": i + 1, **v} for i, v in enumerate(values)]
    null_table.fill(rows)
    unique = list(dict.fromkeys(name for name, _ in sort))
    sort = [(name, next(d for n, d in sort if n == name)) for name in unique]
    spec = ",".join(("-" if descending else "") + name for name, descending in sort)

    walked = null_table.walk(spec, limit)

    assert len(walked) == len(set(walked)), "a row came twice"
    assert walked == expected_order(rows, sort), f"sort={spec} limit={limit}"


def test_second_page_over_null_due_dates_is_served(null_table: NullTable) -> None:
    """The reported case: 30 rows without a due date (SQL NULL), sort=due date, 20 a page."""
    null_table.fill([{"k": i, "a": None, "s": None, "d": None, "q": None, "n": None} for i in range(1, 31)])
    for spec in ("d", "-d", "d,-q", "s,a"):
        assert null_table.walk(spec, 20) == (list(range(1, 31)))


numeric = st.decimals(min_value=-9999, max_value=9999, places=4, allow_nan=False, allow_infinity=False)


@settings(max_examples=20, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=st.lists(st.none() | numeric, max_size=20), threshold=numeric, descending=st.booleans())
def test_decimal_filters_and_sorts_on_a_numeric_column(
    null_table: NullTable, stored: list[Decimal | None], threshold: Decimal, descending: bool
) -> None:
    rows = [{"k": i + 1, "a": None, "s": None, "d": None, "q": None, "n": n} for i, n in enumerate(stored)]
    null_table.fill(rows)
    query = urllib.parse.urlencode({"n[gte]": str(threshold), "sort": "-n" if descending else "n", "limit": "500"})
    response = null_table.client.get(f"/v1/nullsort?{query}&fields=k,n")
    assert response.status_code == 200, response.text
    matching = [r for r in rows if r["n"] is not None and r["n"] >= threshold]
    assert [r["k"] for r in response.json()["data"]] == expected_order(matching, [("n", descending)])
