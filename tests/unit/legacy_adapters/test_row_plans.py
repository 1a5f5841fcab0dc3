"""Per-shape plans: the generated row decoder serves what the checked loop serves, and the plan cache stays bounded."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import load_mapping
from legacy_adapters.query.builder import selected_columns
from legacy_adapters.query.plan_cache import PlanCache
from legacy_adapters.query.resource import bind_version
from legacy_adapters.query.rows import RowDecoder

ENV = {"BRIDGEHEAD_JWT_SECRET": "x" * 40, "BRIDGEHEAD_DB_URL": "sqlite:///legacy.db"}
RESOURCES = bind_version(load_mapping(DEMO_MAPPING_PATH, ENV), "v1")
JOBS = RESOURCES["jobs"]
FIELDS = tuple(JOBS.fields.values())
COLUMNS = selected_columns(FIELDS)
DECODER = RowDecoder.for_columns(JOBS, FIELDS, COLUMNS)

# Stored values as the legacy columns hold them, dirty ones included: unknown codes, impossible dates,
# wrong types, sentinels, NULLs, padded text.
_VALUES: dict[str, Any] = {
    "text": st.one_of(st.none(), st.text(max_size=12), st.text(max_size=8).map(lambda s: s.ljust(10))),
    "number": st.one_of(
        st.none(),
        st.integers(-(10**9), 10**9),
        st.sampled_from([0, 99999999, 20230231, 20260101, 19991231, 235959, 1, -1]),
        st.text(max_size=4),
    ),
}


@st.composite
def stored_rows(draw: st.DrawFn) -> tuple[Any, ...]:
    return tuple(draw(st.one_of(_VALUES["text"], _VALUES["number"])) for _ in COLUMNS)


@settings(max_examples=300, deadline=None)
@given(stored_rows())
def test_the_generated_decoder_serves_what_the_checked_loop_serves(row: tuple[Any, ...]) -> None:
    assert DECODER.decode(row) == DECODER._checked(row)
    assert list(DECODER.decode(row)) == [f.name for f in FIELDS]  # the order the fields were asked in


@pytest.mark.parametrize("resource", sorted(RESOURCES))
def test_every_demo_resource_decodes_a_row_of_nulls_like_the_loop(resource: str) -> None:
    bound = RESOURCES[resource]
    fields = tuple(bound.fields.values())
    columns = selected_columns(fields)
    decoder = RowDecoder.for_columns(bound, fields, columns)
    row = (None,) * len(columns)
    assert decoder.decode(row) == decoder._checked(row)


def test_a_dirty_row_in_a_page_does_not_spoil_the_others() -> None:
    clean = DECODER._checked(_stored(JSTAT="C         "))
    dirty = _stored(JSTAT="X         ")
    decoded = DECODER.decode_all([_stored(JSTAT="C         "), dirty, _stored(JSTAT="C         ")])
    assert decoded[0] == clean == decoded[2]
    assert decoded[1]["status"] is None and decoded[1]["job_number"] == "J000001"


@pytest.mark.parametrize(
    "odd", [{"PRIO": Decimal("sNaN")}, {"JSTAT": Decimal("sNaN")}, {"DUEDT": Decimal("sNaN")}, {"ORDDT": b"\x00"}]
)
def test_a_value_no_transform_planned_for_is_served_null_not_a_500(odd: dict[str, Any]) -> None:
    """A signalling NaN (it cannot be hashed or compared) or a byte string in a number column: the row is served
    with that field null, like any dirty value, and the rows around it are untouched."""
    clean = DECODER._checked(_stored())
    decoded = DECODER.decode_all([_stored(), _stored(**odd), _stored()])
    assert decoded[0] == clean == decoded[2]
    dirty = {name for name, value in decoded[1].items() if value is None and clean[name] is not None}
    assert len(dirty) == 1 and decoded[1]["job_number"] == "J000001"
    assert DECODER.decode(_stored(**odd)) == decoded[1]


def test_field_names_reach_the_generated_code_only_as_literals() -> None:
    hostile = "x'); import os; os._exit(1); ('"
    steps = ((hostile, str.upper, 0, None), ('quote"\\', str.lower, 1, None))
    from legacy_adapters.query.rows import _generated

    expected = {hostile: "A", 'quote"\\': "b"}
    for plans in ((None, None), ((None, (str.upper,)), (None, (str.lower,)))):  # one call, or written-out steps
        decode, decode_all = _generated(steps, plans)
        assert decode(("a", "B")) == expected
        assert decode_all([("a", "B")], lambda _r: {}) == [expected]


def _stored(**changes: Any) -> tuple[Any, ...]:
    values = {
        "JOBNO": "J000001   ", "CUSTNO": "C1      ", "ITEMNO": "I1        ", "JSTAT": "C         ",
        "ORDDT": 20260102, "ORDTM": 101112, "DUEDT": 20260201, "RUSHFL": "N", "QTY": 150, "PRIO": 0,
        "NOTES": None,
    } | changes  # fmt: skip
    return tuple(values.get(c.name) for c in COLUMNS)


def test_the_plan_cache_keeps_the_most_recent_entries_only() -> None:
    cache: PlanCache[int] = PlanCache(size=3)
    built: list[str] = []

    def build(key: str) -> int:
        built.append(key)
        return len(built)

    for key in ("a", "b", "c", "a", "d", "a", "b"):
        cache.get(key, lambda key=key: build(key))
    assert len(cache) == 3
    # a stays (used again before d evicted the oldest, b); b is built again.
    assert built == ["a", "b", "c", "d", "b"]


def test_the_plan_cache_is_safe_across_threads() -> None:
    cache: PlanCache[tuple[int, int]] = PlanCache(size=16)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(2000):
                key = (n * 7 + i) % 40
                assert cache.get(key, lambda key=key: (key, key))[0] == key
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cache) <= 16
