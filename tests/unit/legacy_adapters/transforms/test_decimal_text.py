"""``as_string``: a decimal served as exact text, read back from text, never through a float."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legacy_adapters.mapping.model import FieldSpec
from legacy_adapters.query.values import ValueBounds, coerce_json
from legacy_adapters.transforms import build_codec
from legacy_adapters.transforms.base import Unencodable

MONEY = FieldSpec(column="CRLIM", type="decimal", scale=2, as_string=True)
DECIMAL_COLUMN = FieldSpec(column="AMT", type="decimal", decimals=3, as_string=True)


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_implied_cents_round_trip_as_text(stored: int) -> None:
    codec = build_codec(MONEY)
    text = codec.to_api(stored)
    assert isinstance(text, str) and "E" not in text and len(text.split(".")[1]) == 2
    assert Decimal(text) == Decimal(stored).scaleb(-2)
    assert codec.to_legacy(text) == stored  # text from a body
    assert codec.to_legacy(Decimal(text)) == stored  # a parsed filter value


def test_places_look_through_the_text_link() -> None:
    assert build_codec(MONEY).places == 2
    assert build_codec(DECIMAL_COLUMN).places == 3
    assert build_codec(DECIMAL_COLUMN).to_api("1.5") == "1.500"  # sqliteodbc's text, the column's scale


def test_large_and_tiny_values_are_written_out_in_full() -> None:
    codec = build_codec(FieldSpec(column="X", type="decimal", scale=0, as_string=True))
    assert codec.to_api(10**20) == "100000000000000000000"
    assert build_codec(FieldSpec(column="X", type="decimal", scale=8, as_string=True)).to_api(1) == "0.00000001"


@pytest.mark.parametrize("hostile", ["NaN", "Infinity", "-inf", "12,50", "", " ", "1e", "0x10"])
def test_text_that_is_not_a_finite_decimal_is_refused(hostile: str) -> None:
    with pytest.raises(Unencodable):
        build_codec(MONEY).to_legacy(hostile)


def test_more_places_than_stored_is_refused_not_rounded() -> None:
    with pytest.raises(Unencodable, match="more than 2 decimals"):
        build_codec(MONEY).to_legacy("12.505")


def test_bodies_give_as_string_decimals_as_strings() -> None:
    bounds = ValueBounds("decimal")
    assert coerce_json("decimal", "12.50", bounds, as_string=True) == Decimal("12.50")
    with pytest.raises(ValueError, match=re.escape('expected a decimal string such as "12.50", got Decimal 12.5')):
        coerce_json("decimal", Decimal("12.5"), bounds, as_string=True)
    with pytest.raises(ValueError):
        coerce_json("decimal", "NaN", bounds, as_string=True)
    with pytest.raises(ValueError):
        coerce_json("decimal", "9" * 5000, bounds, as_string=True)  # bounded before Decimal() sees it
    assert coerce_json("decimal", Decimal("12.5"), bounds) == Decimal("12.5")  # plain decimals: unchanged


def test_as_string_needs_type_decimal() -> None:
    with pytest.raises(ValueError, match="needs type: decimal"):
        build_codec(FieldSpec(column="X", type="integer", as_string=True))
