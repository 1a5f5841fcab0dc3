"""Examples for trim, zero_padded and code maps."""

from __future__ import annotations

import pytest

from legacy_adapters.mapping.model import FieldSpec
from legacy_adapters.transforms import Undecodable, Unencodable, build_codec
from legacy_adapters.transforms.text import CodeMap, Trim, ZeroPadded, code_map


def test_trim_strips_trailing_spaces_only() -> None:
    assert Trim(8).to_api("  AB 1   ") == "  AB 1"


def test_trim_pads_to_the_column_width() -> None:
    assert Trim(8).to_legacy("AB1") == "AB1     "
    assert Trim().to_legacy("AB1") == "AB1"


@pytest.mark.parametrize("value", ["ABCDEFGHI", "AB ", 12])
def test_trim_refuses_what_it_cannot_store(value: object) -> None:
    with pytest.raises(Unencodable):
        Trim(8).to_legacy(value)


def test_trim_refuses_a_stored_number() -> None:
    with pytest.raises(Undecodable):
        Trim(8).to_api(12)


def test_zero_padded() -> None:
    assert ZeroPadded(6).to_api("000123") == 123
    assert ZeroPadded(6).to_legacy(123) == "000123"


@pytest.mark.parametrize("raw", ["00012A", "", " 12", "00012³", 123])
def test_zero_padded_refuses_non_digits(raw: object) -> None:
    with pytest.raises(Undecodable):
        ZeroPadded(6).to_api(raw)


@pytest.mark.parametrize("value", [1_000_000, -1, True, "123"])
def test_zero_padded_refuses_what_does_not_fit(value: object) -> None:
    with pytest.raises(Unencodable):
        ZeroPadded(6).to_legacy(value)


def test_zero_padded_needs_a_length() -> None:
    with pytest.raises(ValueError, match=r"^transform 'zero_padded' needs 'length'$"):
        build_codec(FieldSpec(column="C", transform="zero_padded"))


STATUS = code_map({"R": "released", "H": "on_hold", "C": "complete"})


def test_code_map_matches_padded_codes() -> None:
    assert STATUS.to_api("R ") == "released"
    assert STATUS.to_legacy("on_hold") == "H"
    assert STATUS.order_preserving is False


@pytest.mark.parametrize("raw", ["X", "r", "", 1, None])
def test_code_map_unknown_code_is_undecodable(raw: object) -> None:
    with pytest.raises(Undecodable):
        STATUS.to_api(raw)


def test_code_map_unknown_name_lists_the_allowed_ones() -> None:
    with pytest.raises(Unencodable, match=r"^'shipped' is not one of: complete, on_hold, released$"):
        STATUS.to_legacy("shipped")


def test_code_map_int_codes_do_not_match_bools() -> None:
    flags = code_map({1: "open", 0: "closed"})
    assert flags.to_api(1) == "open"
    with pytest.raises(Undecodable):
        flags.to_api(True)


def test_code_map_refuses_duplicate_api_names() -> None:
    with pytest.raises(ValueError, match="API value 'released' twice"):
        code_map({"R": "released", "X": "released"})


def test_code_map_refuses_codes_equal_after_padding() -> None:
    with pytest.raises(ValueError, match="twice"):
        CodeMap((("R", "released"), ("R ", "rush")))
