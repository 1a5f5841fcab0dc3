"""Examples for the date and time transforms, including DST for date+time pairs."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from legacy_adapters.mapping.model import FieldSpec
from legacy_adapters.transforms import TRANSFORMS, Undecodable, Unencodable, build_codec

LONDON = ZoneInfo("Europe/London")


def _named(name: str) -> object:
    return TRANSFORMS[name](FieldSpec(column="C", transform=name))


@pytest.mark.parametrize(
    ("name", "raw", "day"),
    [
        ("yyyymmdd", 20261201, dt.date(2026, 12, 1)),
        ("yyyymmdd", "20261201", dt.date(2026, 12, 1)),
        ("yyyymmdd", 20240229, dt.date(2024, 2, 29)),
        ("cyymmdd", 1261201, dt.date(2026, 12, 1)),
        ("cyymmdd", 981231, dt.date(1998, 12, 31)),
        ("cyymmdd", 101, dt.date(1900, 1, 1)),
        ("julian", 126335, dt.date(2026, 12, 1)),
        ("julian", 98001, dt.date(1998, 1, 1)),
        ("julian", 124366, dt.date(2024, 12, 31)),
        ("mm/dd/yyyy", "12/01/2026", dt.date(2026, 12, 1)),
    ],
)
def test_date_examples(name: str, raw: object, day: dt.date) -> None:
    transform = _named(name)
    assert transform.to_api(raw) == day  # type: ignore[attr-defined]
    assert transform.to_legacy(day) == (int(raw) if name != "mm/dd/yyyy" else raw)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("yyyymmdd", 20230231),
        ("yyyymmdd", 20231301),
        ("yyyymmdd", 0),
        ("yyyymmdd", -20230101),
        ("yyyymmdd", "2023-01-01"),
        ("yyyymmdd", 2023.0101),
        ("yyyymmdd", True),
        ("cyymmdd", 1230229),
        ("cyymmdd", 10000101),
        ("julian", 123366),
        ("julian", 126000),
        ("julian", 1126001),
        ("mm/dd/yyyy", "02/30/2026"),
        ("mm/dd/yyyy", "2/3/2026"),
        ("mm/dd/yyyy", "2026-12-01"),
        ("hhmmss", 240000),
        ("hhmmss", 126000),
        ("hhmmss", 120060),
        ("hhmmss", None),
    ],
)
def test_impossible_stored_values_are_undecodable(name: str, raw: object) -> None:
    with pytest.raises(Undecodable):
        _named(name).to_api(raw)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["yyyymmdd", "cyymmdd", "julian", "mm/dd/yyyy"])
@pytest.mark.parametrize("value", [dt.datetime(2026, 12, 1, 10, 0), "2026-12-01", 20261201])
def test_dates_accept_only_dates(name: str, value: object) -> None:
    with pytest.raises(Unencodable):
        _named(name).to_legacy(value)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["cyymmdd", "julian"])
@pytest.mark.parametrize("day", [dt.date(1899, 12, 31), dt.date(2900, 1, 1)])
def test_century_digit_limits(name: str, day: dt.date) -> None:
    with pytest.raises(Unencodable, match="1900-2899"):
        _named(name).to_legacy(day)  # type: ignore[attr-defined]


def test_slash_dates_do_not_keep_order() -> None:
    transform = _named("mm/dd/yyyy")
    assert transform.order_preserving is False  # type: ignore[attr-defined]
    assert transform.to_legacy(dt.date(2025, 12, 1)) > transform.to_legacy(dt.date(2026, 1, 1))  # type: ignore[attr-defined]


def test_hhmmss() -> None:
    transform = _named("hhmmss")
    assert transform.to_api(143005) == dt.time(14, 30, 5)  # type: ignore[attr-defined]
    assert transform.to_legacy(dt.time(0, 0, 7)) == 7  # type: ignore[attr-defined]
    for value in (dt.time(1, 2, 3, 500), dt.time(1, 2, 3, tzinfo=dt.UTC)):
        with pytest.raises(Unencodable):
            transform.to_legacy(value)  # type: ignore[attr-defined]


STAMP = build_codec(FieldSpec(column="ORDDT", transform="date_time", time_column="ORDTM", timezone="Europe/London"))


@pytest.mark.parametrize(
    ("raw", "utc"),
    [
        ((20260115, 120000), dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)),  # GMT
        ((20260701, 120000), dt.datetime(2026, 7, 1, 11, 0, tzinfo=dt.UTC)),  # BST
        ((20260701, 3000), dt.datetime(2026, 6, 30, 23, 30, tzinfo=dt.UTC)),  # date changes too
    ],
)
def test_date_time_converts_local_time_in_the_zone(raw: tuple[int, int], utc: dt.datetime) -> None:
    decoded = STAMP.to_api(raw)
    assert decoded == utc
    assert decoded.tzinfo is LONDON
    assert STAMP.to_legacy(utc) == raw
    assert STAMP.to_legacy(utc.astimezone(ZoneInfo("Asia/Tokyo"))) == raw


def test_date_time_reads_the_repeated_hour_as_its_first_pass() -> None:
    # 2026-10-25 01:30 happens twice in London; fold=0 is the BST one, 00:30 UTC.
    # Compared in UTC: Python never finds a fold/gap datetime equal to one in another zone.
    decoded = STAMP.to_api((20261025, 13000))
    assert decoded.astimezone(dt.UTC) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)
    assert decoded.isoformat() == "2026-10-25T01:30:00+01:00"
    # The second pass (GMT, 01:30 UTC) stores the same columns: documented loss.
    assert STAMP.to_legacy(dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)) == (20261025, 13000)


def test_date_time_reads_a_skipped_time_with_the_offset_before_the_change() -> None:
    # 2026-03-29 01:30 never happens in London; read with GMT it is 01:30 UTC (02:30 BST).
    decoded = STAMP.to_api((20260329, 13000))
    assert decoded.astimezone(dt.UTC) == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)
    assert decoded.isoformat() == "2026-03-29T01:30:00+00:00"


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 7, 1, 12, 0),
        dt.datetime(2026, 7, 1, 12, 0, 0, 1, tzinfo=dt.UTC),
        dt.date(2026, 7, 1),
    ],
)
def test_date_time_refuses_naive_fractional_or_date_values(value: object) -> None:
    with pytest.raises(Unencodable):
        STAMP.to_legacy(value)


@pytest.mark.parametrize("raw", [(20260230, 120000), (20260101, 250000), (20260101, None), 20260101])
def test_date_time_refuses_broken_pairs(raw: object) -> None:
    with pytest.raises(Undecodable):
        STAMP.to_api(raw)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "transform 'date_time' needs 'time_column' and 'timezone'"),
        ({"time_column": "T"}, "transform 'date_time' needs 'timezone'"),
        ({"timezone": "UTC"}, "transform 'date_time' needs 'time_column'"),
        ({"time_column": "T", "timezone": "Europe/Lundon"}, "unknown time zone 'Europe/Lundon'"),
        ({"time_column": "T", "timezone": "../etc/passwd"}, "unknown time zone '../etc/passwd'"),
    ],
)
def test_date_time_option_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        build_codec(FieldSpec(column="D", transform="date_time", **options))
    assert str(caught.value) == message
