"""A page compiled once per shape gives the rows the statement built for that page gives, on every backend.

``Reader.page`` compiles a page's SQL once per shape (fields, filter fields and operators,
sort, cursor positions, limit) and binds each page's filter and cursor values as
parameters. Generated filters, sorts and cursors are read both ways, page after page,
on the same database: the prepared plan and the statement built per page must agree on
every row and on the cursor of the next page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from db_backends import mapping_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legacy_adapters.database import Database
from legacy_adapters.query.filters import Comparison
from legacy_adapters.query.resource import Resource, bind_version
from legacy_adapters.reader import Reader, ReadQuery

STATUSES = ("released", "on_hold", "complete", "planned")
CUSTOMERS = tuple(f"C{n:04d}" for n in (1, 2, 7, 13, 42, 99))
JOBS = tuple(f"J{n:06d}" for n in (1, 150, 700, 1400, 1999))
DATES = tuple(dt.date(2020 + y, m, 1) for y in range(0, 7, 2) for m in (1, 6))
QUANTITIES = (Decimal("0"), Decimal("12.5"), Decimal("100"), Decimal("250.125"), Decimal("999.99"))

# (field, operator, values): every operator that has a template, plus ``like``, which has none.
FILTERS: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    ("status", "eq", st.sampled_from(STATUSES)),
    ("status", "ne", st.sampled_from(STATUSES)),
    ("status", "in", st.lists(st.sampled_from(STATUSES), min_size=1, max_size=3, unique=True).map(tuple)),
    ("status", "isnull", st.booleans()),
    ("customer_id", "eq", st.sampled_from(CUSTOMERS)),
    ("customer_id", "ne", st.sampled_from(CUSTOMERS)),
    ("customer_id", "in", st.lists(st.sampled_from(CUSTOMERS), min_size=1, max_size=4, unique=True).map(tuple)),
    ("customer_id", "gte", st.sampled_from(CUSTOMERS)),
    ("job_number", "lt", st.sampled_from(JOBS)),
    ("job_number", "gt", st.sampled_from(JOBS)),
    ("due_date", "lt", st.sampled_from(DATES)),
    ("due_date", "gte", st.sampled_from(DATES)),
    ("due_date", "eq", st.sampled_from(DATES)),
    ("due_date", "isnull", st.booleans()),
    ("quantity", "gt", st.sampled_from(QUANTITIES)),
    ("quantity", "lte", st.sampled_from(QUANTITIES)),
    ("quantity", "eq", st.sampled_from(QUANTITIES)),
    ("rush", "eq", st.booleans()),
    ("priority", "ne", st.booleans()),
]
SORTABLE = ("due_date", "customer_id", "quantity", "status", "job_number", "rush")


@st.composite
def page_shapes(draw: st.DrawFn) -> tuple[list[tuple[str, str, Any]], list[tuple[str, bool]], int]:
    chosen = draw(st.lists(st.sampled_from(range(len(FILTERS))), max_size=3))
    filters = [(FILTERS[i][0], FILTERS[i][1], draw(FILTERS[i][2])) for i in chosen]
    sort = draw(st.lists(st.tuples(st.sampled_from(SORTABLE), st.booleans()), max_size=2, unique_by=lambda s: s[0]))
    limit = draw(st.sampled_from((1, 3, 17)))
    return filters, sort, limit


class _Generic(Reader):
    """The reader with every page (and row-filtered get) built and compiled per read (no prepared plans)."""

    def _prepared_page(self, *_: Any) -> None:
        return None

    def _filtered_by_key(self, *_: Any) -> None:
        return None


@pytest.fixture(scope="module")
def readers(backend_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Resource, Reader, Reader]]:
    mapping = mapping_for(backend_url, tmp_path_factory.mktemp("page-plans"))
    database = Database(mapping.database)
    jobs = bind_version(mapping, "v1")["jobs"]
    yield jobs, Reader(database), _Generic(database)
    database.dispose()


def _query(jobs: Resource, shape: tuple[list[Any], list[Any], int], after: tuple[Any, ...] | None) -> ReadQuery:
    filters, sort, limit = shape
    conditions = tuple(Comparison(jobs.fields[f], op, value, f"{f}[{op}]") for f, op, value in filters)
    order = tuple((jobs.fields[f], descending) for f, descending in sort)
    fields = tuple(jobs.fields[n] for n in ("job_number", "customer_id", "status", "due_date", "quantity", "rush"))
    return ReadQuery(jobs, fields, conditions, order, limit=limit, after=after)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=page_shapes())
def test_a_prepared_page_plan_reads_what_the_built_statement_reads(
    readers: tuple[Resource, Reader, Reader], shape: tuple[list[Any], list[Any], int]
) -> None:
    jobs, prepared, generic = readers
    after: tuple[Any, ...] | None = None
    for _ in range(3):  # the first page, then pages after a cursor (NULL and text positions included)
        mine, theirs = prepared.page(_query(jobs, shape, after)), generic.page(_query(jobs, shape, after))
        assert mine.rows == theirs.rows
        assert mine.last == theirs.last
        if mine.last is None:
            break
        after = mine.last


def test_pages_of_one_shape_share_one_compiled_statement(readers: tuple[Resource, Reader, Reader]) -> None:
    jobs, _, _ = readers
    reader = Reader(readers[1].database)
    statements: list[str] = []
    stop = reader.database.observe_statements(lambda sql, _parameters, _seconds: statements.append(sql))
    try:
        for customer in CUSTOMERS:
            shape = ([("customer_id", "eq", customer), ("status", "eq", "complete")], [("job_number", True)], 1)
            first = reader.page(_query(jobs, shape, None))
            if first.last is not None:
                reader.page(_query(jobs, shape, first.last))
    finally:
        stop()
    assert len(statements) > len(CUSTOMERS)
    # One statement for the first pages, one for the pages after a (text) cursor: values are parameters.
    assert len(reader._page_sql) == len(set(statements)) == 2
    assert not any(customer in sql for sql in statements for customer in CUSTOMERS)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=page_shapes(), job=st.sampled_from((*JOBS, "J000002", "NOPE")))
def test_a_row_filtered_get_compiled_once_reads_what_the_built_statement_reads(
    readers: tuple[Resource, Reader, Reader], shape: tuple[list[Any], list[Any], int], job: str
) -> None:
    """A get with row filters (a portal token's) is compiled once per the filters' shapes, the key bound."""
    jobs, prepared, generic = readers
    conditions = _query(jobs, shape, None).conditions
    fields = tuple(jobs.fields.values())
    assert prepared.get(jobs, (job,), fields, conditions) == generic.get(jobs, (job,), fields, conditions)
