"""FieldCodec: link order, columns, sentinels, identity, and the registry's errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from legacy_adapters.mapping.model import FieldSpec
from legacy_adapters.transforms import (
    TRANSFORMS,
    Unencodable,
    UnknownTransform,
    build_codec,
    get_transform,
)
from legacy_adapters.transforms.text import CodeMap, Trim


def test_trim_then_map_on_read_and_map_then_pad_on_write() -> None:
    codec = build_codec(FieldSpec(column="JSTAT", transform="trim", length=3, map={"R": "released", "H": "on_hold"}))
    assert [type(link) for link in codec.links] == [Trim, CodeMap]
    assert codec.to_api("R  ") == "released"
    assert codec.to_legacy("on_hold") == "H  "
    assert codec.order_preserving is False


def test_transform_then_implied_decimals() -> None:
    # The named transform runs before implied decimals: '001250' -> 1250 -> 12.50.
    codec = build_codec(FieldSpec(column="PRICE", type="decimal", transform="zero_padded", length=6, scale=2))
    assert codec.to_api("001250") == Decimal("12.50")
    assert codec.to_legacy(Decimal("3.5")) == "000350"
    assert codec.order_preserving is True


def test_no_transform_is_identity() -> None:
    codec = build_codec(FieldSpec(column="NOTE"))
    assert codec.links == ()
    assert codec.to_api("as stored  ") == "as stored  "
    assert codec.to_legacy("x") == "x"
    assert codec.to_api(None) is None
    assert codec.to_legacy(None) is None
    assert codec.columns == ("NOTE",)
    assert codec.sentinels == ()
    assert codec.order_preserving is True


def test_a_pair_has_two_columns_and_nulls_on_its_date() -> None:
    spec = FieldSpec(column="ORDDT", transform="date_time", time_column="ORDTM", timezone="UTC", null_if=[0, 99999999])
    codec = build_codec(spec)
    assert codec.columns == ("ORDDT", "ORDTM")
    assert codec.sentinels == (0, 99999999)
    assert codec.order_preserving is True
    assert codec.to_api((0, 0)) is None
    assert codec.to_api((99999999, 123456)) is None
    assert codec.to_api((None, None)) is None
    assert codec.to_api(None) is None
    assert codec.to_legacy(None) == (0, 0)
    assert codec.to_api((20261201, 93000)) == dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def test_a_pair_without_sentinels_writes_sql_nulls() -> None:
    codec = build_codec(FieldSpec(column="D", transform="date_time", time_column="T", timezone="UTC"))
    assert codec.to_legacy(None) == (None, None)


def test_time_column_without_date_time_is_refused() -> None:
    with pytest.raises(ValueError, match="only used for a datetime from two columns"):
        build_codec(FieldSpec(column="D", transform="yyyymmdd", time_column="T"))


def test_sentinel_check_runs_on_the_stored_value() -> None:
    codec = build_codec(FieldSpec(column="DUEDT", type="date", transform="yyyymmdd", null_if=[20991231]))
    with pytest.raises(Unencodable):
        codec.to_legacy(dt.date(2099, 12, 31))


def test_codec_is_frozen() -> None:
    codec = build_codec(FieldSpec(column="C"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        codec.columns = ("D",)  # type: ignore[misc]


def test_unknown_transform_message_lists_known_names_sorted() -> None:
    with pytest.raises(UnknownTransform) as caught:
        get_transform("yyyymmd")
    assert str(caught.value) == (
        "unknown transform 'yyyymmd' (known: active_inactive, boolean, cyymmdd, date_time, hhmmss, "
        "julian, mm/dd/yyyy, one_zero, strip, trim, yes_no, yyyymmdd, zero_padded)"
    )
    assert isinstance(caught.value, ValueError)


def test_build_codec_reports_unknown_transforms_too() -> None:
    with pytest.raises(UnknownTransform, match="'ymd'"):
        build_codec(FieldSpec(column="C", transform="ymd"))


def test_registry_factories_build_transforms() -> None:
    specs = {
        "zero_padded": {"length": 4},
        "boolean": {"bool_values": ("T", "F")},
        "date_time": {"time_column": "T", "timezone": "UTC"},
    }
    for name, factory in TRANSFORMS.items():
        transform = factory(FieldSpec(column="C", transform=name, **specs.get(name, {})))  # type: ignore[arg-type]
        assert isinstance(transform.order_preserving, bool)
