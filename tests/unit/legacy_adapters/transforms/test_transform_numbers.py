"""Examples for implied decimals and null sentinels."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legacy_adapters.mapping.model import FieldSpec
from legacy_adapters.transforms import Undecodable, Unencodable, build_codec
from legacy_adapters.transforms.numbers import ImpliedDecimal, NullIf, on_grid

CENTS = ImpliedDecimal(2)


def test_implied_decimals_decode_with_their_scale() -> None:
    assert str(CENTS.to_api(1250)) == "12.50"
    assert str(CENTS.to_api(-5)) == "-0.05"
    assert CENTS.to_api(Decimal(1250)) == Decimal("12.50")
    assert str(ImpliedDecimal(0).to_api(7)) == "7"


@pytest.mark.parametrize("raw", [Decimal("12.5"), 12.5, "1250", True, None])
def test_implied_decimals_refuse_non_integers(raw: object) -> None:
    with pytest.raises(Undecodable):
        CENTS.to_api(raw)


@pytest.mark.parametrize(
    ("value", "stored"),
    [(Decimal("12.5"), 1250), (Decimal("12.50"), 1250), (12, 1200), (0.1, 10), (-1.25, -125)],
)
def test_implied_decimals_encode_to_an_int(value: object, stored: int) -> None:
    encoded = CENTS.to_legacy(value)
    assert encoded == stored
    assert type(encoded) is int


@pytest.mark.parametrize("value", [Decimal("12.505"), 12.505, Decimal("NaN"), float("inf"), "12.50", False])
def test_implied_decimals_refuse_rather_than_round(value: object) -> None:
    with pytest.raises(Unencodable):
        CENTS.to_legacy(value)


def test_negative_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="'scale'"):
        build_codec(FieldSpec(column="C", scale=-1))


DUE = build_codec(FieldSpec(column="DUEDT", type="date", transform="yyyymmdd", null_if=[0, 99999999]))


@pytest.mark.parametrize("raw", [0, 99999999, None])
def test_sentinels_read_as_null(raw: object) -> None:
    assert DUE.to_api(raw) is None


def test_null_is_written_as_the_first_sentinel() -> None:
    assert DUE.to_legacy(None) == 0
    assert DUE.sentinels == (0, 99999999)


def test_a_value_that_would_be_stored_as_a_sentinel_is_refused() -> None:
    qty = build_codec(FieldSpec(column="QTY", type="decimal", scale=2, null_if=[0]))
    assert qty.to_legacy(Decimal("0.01")) == 1
    with pytest.raises(Unencodable, match="reads back as null"):
        qty.to_legacy(Decimal("0"))


def test_string_sentinels_ignore_padding_and_types_do_not_mix() -> None:
    blank = NullIf(("", 0))
    assert blank.is_null("        ")
    assert blank.is_null(Decimal(0))
    assert not blank.is_null("0")
    assert not blank.is_null(False)


DECIMAL_11_2 = FieldSpec(column="AMT", type="decimal", decimals=2)


@pytest.mark.parametrize(
    "raw",
    [Decimal("22263.70"), Decimal("22263.7"), 22263.7, "22263.7", "22263.70 ", Decimal("22263.700")],
    ids=["psqlodbc", "short decimal", "sqlite3 float", "sqliteodbc text", "padded text", "longer decimal"],
)
def test_decimal_columns_are_served_with_their_scale_whatever_the_driver_returns(raw: object) -> None:
    served = build_codec(DECIMAL_11_2).to_api(raw)
    assert isinstance(served, Decimal) and str(served) == "22263.70"


def test_decimal_values_finer_than_the_scale_are_refused_both_ways() -> None:
    codec = build_codec(DECIMAL_11_2)
    with pytest.raises(Undecodable, match="more than 2 decimals"):
        codec.to_api(1.005)
    with pytest.raises(Unencodable, match="more than 2 decimals"):
        codec.to_legacy(Decimal("1.234"))
    assert codec.to_legacy(Decimal("1.2")) == Decimal("1.20")


def test_decimal_without_declared_scale_keeps_what_the_driver_gave() -> None:
    codec = build_codec(FieldSpec(column="AMT", type="decimal"))
    assert str(codec.to_api("12.5")) == "12.5" and str(codec.to_api(Decimal("12.50"))) == "12.50"
    with pytest.raises(Undecodable):
        codec.to_api("twelve")


@pytest.mark.parametrize("raw", [500000, Decimal("500000"), 500000.0, "500000", " 500000 "])
def test_integers_are_served_as_integers_whatever_the_driver_returns(raw: object) -> None:
    served = build_codec(FieldSpec(column="ORDNO", type="integer")).to_api(raw)
    assert type(served) is int and served == 500000


@pytest.mark.parametrize("raw", [500000.5, Decimal("1.5"), float(2**60), "12a", True])
def test_fractional_or_inexact_numbers_are_not_integers(raw: object) -> None:
    with pytest.raises(Undecodable):
        build_codec(FieldSpec(column="ORDNO", type="integer")).to_api(raw)


_MONEY = st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False)


@settings(derandomize=True)
@given(value=_MONEY)
def test_every_driver_form_of_a_decimal_serves_the_same_value_and_places(value: Decimal) -> None:
    codec = build_codec(DECIMAL_11_2)
    forms = [value, value.normalize(), float(value), str(value.normalize()), f"{value} "]
    served = {str(codec.to_api(form)) for form in forms}
    assert served == {str(value.quantize(Decimal("0.01")))}
    assert codec.to_legacy(codec.to_api(float(value))) == value


_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
}


@settings(derandomize=True)
@given(
    stored=st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=30),
    value=st.decimals(min_value=-(10**4), max_value=10**4, places=5, allow_nan=False, allow_infinity=False),
    op=st.sampled_from(sorted(_OPS)),
)
def test_a_value_finer_than_the_grid_selects_the_same_rows_restated(stored: list[int], value: Decimal, op: str) -> None:
    """What ``price[op]=value`` must select over prices with 2 places, and what SQL is asked instead."""
    prices = [Decimal(n).scaleb(-2) for n in stored]
    wanted = [p for p in prices if _OPS[op](p, value)]
    restated = on_grid(value, 2, op)
    if isinstance(restated, bool):
        assert wanted == (prices if restated else [])
    else:
        new_op, on = restated
        assert on == on.quantize(Decimal("0.01"))
        assert [p for p in prices if _OPS[new_op](p, on)] == wanted
