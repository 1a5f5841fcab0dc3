"""Examples for the boolean transforms."""

from __future__ import annotations

import pytest

from legacy_adapters.mapping.model import FieldSpec
from legacy_adapters.transforms import TRANSFORMS, Undecodable, Unencodable, build_codec
from legacy_adapters.transforms.booleans import BoolCodes


def _named(name: str, **options: object) -> BoolCodes:
    transform = TRANSFORMS[name](FieldSpec(column="C", transform=name, **options))  # type: ignore[arg-type]
    assert isinstance(transform, BoolCodes)
    return transform


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("yes_no", "Y", True),
        ("yes_no", "N ", False),
        ("active_inactive", "A", True),
        ("active_inactive", "I", False),
        ("one_zero", 1, True),
        ("one_zero", 0, False),
        ("one_zero", "1", True),
        ("one_zero", "0 ", False),
        ("one_zero", True, True),  # a BIT column
    ],
)
def test_codes_decode(name: str, raw: object, value: bool) -> None:
    assert _named(name).to_api(raw) is value


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("yes_no", "X"),
        ("yes_no", "y"),
        ("yes_no", ""),
        ("yes_no", 1),
        ("active_inactive", "Y"),
        ("one_zero", 2),
    ],
)
def test_unknown_codes_are_undecodable(name: str, raw: object) -> None:
    with pytest.raises(Undecodable):
        _named(name).to_api(raw)


def test_encode_gives_the_stored_code() -> None:
    assert _named("yes_no").to_legacy(True) == "Y"
    assert _named("active_inactive").to_legacy(False) == "I"
    stored = _named("one_zero").to_legacy(True)
    assert stored == 1
    assert type(stored) is int


@pytest.mark.parametrize("value", [1, "Y", "true", None])
def test_encode_accepts_only_bools(value: object) -> None:
    with pytest.raises(Unencodable):
        _named("yes_no").to_legacy(value)


def test_custom_codes() -> None:
    flag = _named("boolean", bool_values=("T", "F"))
    assert flag.to_api("T") is True
    assert flag.to_legacy(False) == "F"
    assert flag.order_preserving is False


def test_custom_codes_must_be_given_and_differ() -> None:
    with pytest.raises(ValueError, match=r"^transform 'boolean' needs 'bool_values'$"):
        build_codec(FieldSpec(column="C", transform="boolean"))
    with pytest.raises(ValueError, match="both stored as"):
        build_codec(FieldSpec(column="C", transform="boolean", bool_values=("Y", "Y ")))
