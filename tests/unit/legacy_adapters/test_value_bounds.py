"""Every API number is bounded by its field before any arithmetic: huge, tiny, NaN, long, negative.

``Decimal('1e400000')`` parses in microseconds; scaling it and making it an
``int`` for an implied-decimal column held the interpreter for 10 s. The
properties: each value is refused with ``OutOfRange`` (or a plain ValueError for a
malformed one) in O(1), or accepted and then encodable by the field's codec into
a stored value its column holds.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legacy_adapters.mapping.model import FieldSpec
from legacy_adapters.query.values import (
    INT64_MAX,
    INT64_MIN,
    OutOfRange,
    ValueBounds,
    bounds_for,
    check_magnitude,
    coerce_json,
    parse_value,
)
from legacy_adapters.transforms import Unencodable, build_codec

QUANTITY = FieldSpec(column="QTY", type="decimal", scale=2)
SEQUENCE = FieldSpec(column="OPSEQ", type="integer")
AMOUNT = FieldSpec(column="AMT", type="decimal")  # a NUMERIC column read as Decimal by the driver
RATE = FieldSpec(column="RATE", type="number")

decimals = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.builds(lambda m, e: Decimal(f"{m}E{e}"), st.integers(-(10**30), 10**30), st.integers(-2_000_000, 2_000_000)),
    st.integers(-(10**40), 10**40).map(Decimal),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(value=decimals, spec=st.sampled_from([QUANTITY, SEQUENCE, AMOUNT, RATE]))
def test_any_decimal_is_refused_fast_or_fits_its_column(value: Decimal, spec: FieldSpec) -> None:
    bounds = bounds_for(spec)
    text = str(value)
    started = time.perf_counter()
    try:
        parsed = parse_value(spec.type, text, bounds)
    except ValueError:
        assert time.perf_counter() - started < 1.0  # a stall guard (it took 10 s), not a speed target
        return
    assert time.perf_counter() - started < 1.0  # a stall guard (it took 10 s), not a speed target
    if spec.scale is not None or spec.type == "integer":
        try:
            stored = build_codec(spec).to_legacy(parsed)
        except Unencodable:
            return  # extra decimal places: the codec's business, small in magnitude
        assert INT64_MIN <= stored <= INT64_MAX
    else:
        assert abs(parsed.adjusted()) <= 1000


@settings(max_examples=200, deadline=None, derandomize=True)
@given(value=decimals)
def test_a_json_body_number_gets_the_same_bounds(value: Decimal) -> None:
    bounds = bounds_for(QUANTITY)
    started = time.perf_counter()
    try:
        query_form = parse_value("decimal", str(value), bounds)
    except ValueError as exc:
        query_form = type(exc)
    try:
        body_form = coerce_json("decimal", value, bounds)
    except ValueError as exc:
        body_form = type(exc)
    assert time.perf_counter() - started < 1.0  # a stall guard (it took 10 s), not a speed target
    if isinstance(query_form, Decimal):
        assert body_form == query_form
    elif value.is_finite():
        assert body_form is OutOfRange


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("1e400000", QUANTITY),
        ("-1e400000", QUANTITY),
        ("1e-400000", QUANTITY),
        ("1e30", QUANTITY),
        ("92233720368547758.08", QUANTITY),
        ("99999999999999999999", SEQUENCE),
        ("-9223372036854775809", SEQUENCE),
        ("1e39", AMOUNT),
        ("1e309", RATE),
    ],
)
def test_out_of_range_is_named(text: str, spec: FieldSpec) -> None:
    with pytest.raises(OutOfRange, match="out of range"):
        parse_value(spec.type, text, bounds_for(spec))


@pytest.mark.parametrize(
    ("text", "spec"),
    [("92233720368547758.07", QUANTITY), ("-92233720368547758.08", QUANTITY), ("9223372036854775807", SEQUENCE)],
)
def test_the_edges_of_the_column_are_accepted(text: str, spec: FieldSpec) -> None:
    assert build_codec(spec).to_legacy(parse_value(spec.type, text, bounds_for(spec))) in (INT64_MAX, INT64_MIN)


def test_small_extra_places_are_left_to_the_codec() -> None:
    """Magnitude only: 1.234 for a scale-2 field is the codec's call (issue 19 may compare it exactly)."""
    assert parse_value("decimal", "1.234", bounds_for(QUANTITY)) == Decimal("1.234")
    check_magnitude(Decimal("0.000001"), ValueBounds("decimal", scale=2, integer_stored=True))


def test_text_bounds() -> None:
    with pytest.raises(ValueError, match="NUL"):
        parse_value("string", "a\x00b")
    with pytest.raises(OutOfRange, match="too long"):
        parse_value("string", "x" * 5000)
    assert parse_value("string", "J€SEC1 日本") == "J€SEC1 日本"
