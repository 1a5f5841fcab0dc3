"""Date and time codecs (``date:``/``time:``): every named one and patterns, both ways, in order.

Each case has an encoder written here from the format's definition (not from our code),
so the properties check the codec against the format, not against itself: decoding the
reference encoding gives the date back, encoding gives the reference, integral Decimals
(pyodbc's NUMERIC(8,0)) decode like ints, and ordered codecs keep order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from legacy_adapters.mapping.model import FieldSpec
from legacy_adapters.transforms import Undecodable, Unencodable, build_codec
from legacy_adapters.transforms.dates import DATE_CODECS, TIME_CODECS


def _pivot(year: int, pivot: int = 1940) -> bool:
    return pivot <= year < pivot + 100


def _c(d: dt.date) -> int:
    return (d.year - 1900) // 100


def _j(d: dt.date) -> int:
    return d.timetuple().tm_yday


_ANY = st.dates()
_CYY = st.dates(dt.date(1900, 1, 1), dt.date(2899, 12, 31))
_PIVOT = st.dates(dt.date(1940, 1, 1), dt.date(2039, 12, 31))

# name -> (dates it can hold, reference encoder, keeps order)
DATES: dict[str, tuple[st.SearchStrategy[dt.date], Callable[[dt.date], Any], bool]] = {
    "yyyymmdd": (_ANY, lambda d: d.year * 10000 + d.month * 100 + d.day, True),
    "cyymmdd": (_CYY, lambda d: _c(d) * 1_000_000 + d.year % 100 * 10000 + d.month * 100 + d.day, True),
    "yymmdd": (_PIVOT, lambda d: d.year % 100 * 10000 + d.month * 100 + d.day, False),
    "yyyyddd": (_ANY, lambda d: d.year * 1000 + _j(d), True),
    "cyyddd": (_CYY, lambda d: _c(d) * 100_000 + d.year % 100 * 1000 + _j(d), True),
    "yyddd": (_PIVOT, lambda d: d.year % 100 * 1000 + _j(d), False),
    "mmddyy": (_PIVOT, lambda d: d.month * 10000 + d.day * 100 + d.year % 100, False),
    "mmddyyyy": (_ANY, lambda d: d.month * 1_000_000 + d.day * 10000 + d.year, False),
    "ddmmyyyy": (_ANY, lambda d: d.day * 1_000_000 + d.month * 10000 + d.year, False),
    "mm/dd/yyyy": (_ANY, lambda d: f"{d.month:02d}/{d.day:02d}/{d.year:04d}", False),
    "pattern:%Y-%m-%d": (_ANY, lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}", True),
    "pattern:%d.%m.%Y": (_ANY, lambda d: f"{d.day:02d}.{d.month:02d}.{d.year:04d}", False),
}

_SECONDS = st.times().map(lambda t: t.replace(microsecond=0))
_MINUTES = _SECONDS.map(lambda t: t.replace(second=0))
_HUNDREDTHS = st.times().map(lambda t: t.replace(microsecond=t.microsecond // 10000 * 10000))

TIMES: dict[str, tuple[st.SearchStrategy[dt.time], Callable[[dt.time], Any]]] = {
    "hhmmss": (_SECONDS, lambda t: t.hour * 10000 + t.minute * 100 + t.second),
    "hhmm": (_MINUTES, lambda t: t.hour * 100 + t.minute),
    "hhmmssth": (
        _HUNDREDTHS,
        lambda t: t.hour * 1_000_000 + t.minute * 10000 + t.second * 100 + t.microsecond // 10000,
    ),
    "seconds": (_SECONDS, lambda t: t.hour * 3600 + t.minute * 60 + t.second),
    "pattern:%H:%M": (_MINUTES, lambda t: f"{t.hour:02d}:{t.minute:02d}"),
    "pattern:%H%M%S%3f": (
        st.times().map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)),
        lambda t: t.hour * 10_000_000 + t.minute * 100_000 + t.second * 1000 + t.microsecond // 1000,
    ),
}


def _date(name: str) -> Any:
    return build_codec(FieldSpec(column="D", type="date", date=name))


def _time(name: str) -> Any:
    return build_codec(FieldSpec(column="T", type="time", time=name))


def test_every_named_codec_has_a_case() -> None:
    assert set(DATE_CODECS) <= set(DATES)
    assert set(TIME_CODECS) <= set(TIMES)


@pytest.mark.parametrize("name", DATES)
@settings(derandomize=True)
@given(data=st.data())
def test_dates_decode_and_encode_like_the_format(name: str, data: st.DataObject) -> None:
    days, encode, _ = DATES[name]
    codec, day = _date(name), data.draw(days)
    stored = encode(day)
    assert codec.to_api(stored) == day
    assert codec.to_legacy(day) == stored
    if isinstance(stored, int):  # NUMERIC(8,0) through pyodbc, and a CHAR column of digits
        assert codec.to_api(Decimal(stored)) == day
        assert codec.to_legacy(codec.to_api(Decimal(stored))) == stored
        assert codec.to_api(str(stored)) == day


@pytest.mark.parametrize("name", TIMES)
@settings(derandomize=True)
@given(data=st.data())
def test_times_decode_and_encode_like_the_format(name: str, data: st.DataObject) -> None:
    times, encode = TIMES[name]
    codec, time = _time(name), data.draw(times)
    stored = encode(time)
    assert codec.to_api(stored) == time
    assert codec.to_legacy(time) == stored
    if isinstance(stored, int):
        assert codec.to_api(Decimal(stored)) == time


@pytest.mark.parametrize("name", DATES)
def test_order_claims_follow_field_significance(name: str) -> None:
    assert _date(name).order_preserving is DATES[name][2]


@pytest.mark.parametrize("name", [n for n in DATES if DATES[n][2]])
@settings(derandomize=True)
@given(data=st.data())
def test_ordered_date_codecs_keep_order(name: str, data: st.DataObject) -> None:
    days, _, _ = DATES[name]
    codec = _date(name)
    a, b = sorted([data.draw(days), data.draw(days)])
    assume(a != b)
    assert codec.to_legacy(a) < codec.to_legacy(b)


@pytest.mark.parametrize("name", TIMES)
@settings(derandomize=True)
@given(data=st.data())
def test_time_codecs_keep_order(name: str, data: st.DataObject) -> None:
    times, _ = TIMES[name]
    codec = _time(name)
    assert codec.order_preserving
    a, b = sorted([data.draw(times), data.draw(times)])
    assume(a != b)
    assert codec.to_legacy(a) < codec.to_legacy(b)


def test_two_digit_years_follow_the_pivot() -> None:
    default = _date("yymmdd")
    assert default.to_api(400101) == dt.date(1940, 1, 1)
    assert default.to_api(391231) == dt.date(2039, 12, 31)
    assert default.to_api(101) == dt.date(2000, 1, 1)  # 000101 as a NUMERIC loses its zeros
    moved = build_codec(FieldSpec(column="D", type="date", date="yymmdd", pivot_year=1970))
    assert moved.to_api(691231) == dt.date(2069, 12, 31) and moved.to_api(700101) == dt.date(1970, 1, 1)
    with pytest.raises(Unencodable, match="1970-2069"):
        moved.to_legacy(dt.date(1969, 12, 31))


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("cyymmdd", 10_000_101),  # eight digits
        ("cyymmdd", Decimal("1261201.5")),
        ("cyymmdd", Decimal(-1261201)),
        ("cyymmdd", 1230229),  # 2023 is no leap year
        ("yyyyddd", 2023366),
        ("yyyyddd", 2024000),
        ("yyddd", 99366),
        ("ddmmyyyy", 31022024),
        ("mm/dd/yyyy", "2/3/2026"),
        ("pattern:%Y-%m-%d", "2026-12-1"),
        ("pattern:%Y-%m-%d", 20261201),
    ],
)
def test_impossible_dates_are_undecodable(name: str, raw: Any) -> None:
    with pytest.raises(Undecodable):
        _date(name).to_api(raw)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("hhmm", 2400),
        ("hhmm", 1260),
        ("hhmm", 14300),
        ("seconds", 86400),
        ("hhmmssth", 24000000),
        ("hhmmssth", 100000000),
    ],
)
def test_impossible_times_are_undecodable(name: str, raw: Any) -> None:
    with pytest.raises(Undecodable):
        _time(name).to_api(raw)


@pytest.mark.parametrize(
    ("name", "value"),
    [("hhmm", dt.time(14, 30, 5)), ("hhmmss", dt.time(1, 2, 3, 4)), ("hhmmssth", dt.time(1, 2, 3, 4000))],
)
def test_times_refuse_precision_they_cannot_keep(name: str, value: dt.time) -> None:
    with pytest.raises(Unencodable, match="more precise"):
        _time(name).to_legacy(value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"type": "date", "date": "yyyymmd"}, "unknown date codec 'yyyymmd'"),
        ({"type": "date", "date": "pattern:%C%y%m"}, "needs a year (%Y or %y) and either %m and %d, or %j"),
        ({"type": "date", "date": "pattern:%Y%m%d%H"}, "%H is not a date field"),
        ({"type": "date", "date": "pattern:%Y%Y%m%d"}, "has %Y twice"),
        ({"type": "date", "date": "pattern:%C%Y%j"}, "century digit %C goes with a two-digit year"),
        ({"type": "date", "date": "cyymmdd", "pivot_year": 1950}, "'pivot_year' applies to two-digit years"),
        ({"type": "time", "time": "hhmmsss"}, "unknown time codec 'hhmmsss'"),
        ({"type": "time", "time": "pattern:%M%S"}, "needs %H"),
        ({"type": "string", "date": "yyyymmdd"}, "needs type: date, time or datetime"),
        ({"type": "date", "date": "yyyymmdd", "transform": "trim"}, "either 'transform' or 'date'/'time'"),
        ({"type": "datetime", "date": "yyyymmdd", "time": "hhmm"}, "needs 'time_column' and 'timezone'"),
    ],
)
def test_codec_option_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^.*" + message.replace("(", r"\(").replace(")", r"\)")):
        build_codec(FieldSpec(column="D", **options))


def test_named_date_codec_used_as_a_transform_points_at_the_key() -> None:
    with pytest.raises(ValueError, match="'yyyyddd' is a date codec: write 'date: yyyyddd'"):
        build_codec(FieldSpec(column="D", type="date", transform="yyyyddd"))


def test_timestamp_from_century_date_and_hhmm_columns() -> None:
    codec = build_codec(
        FieldSpec(
            column="SHPDT",
            type="datetime",
            date="cyymmdd",
            time_column="SHPTM",
            time="hhmm",
            timezone="America/Chicago",
        )
    )
    assert codec.columns == ("SHPDT", "SHPTM") and codec.order_preserving
    stamp = codec.to_api((Decimal(1260310), Decimal(745)))
    assert stamp == dt.datetime(2026, 3, 10, 12, 45, tzinfo=dt.UTC)
    assert codec.to_legacy(dt.datetime(2026, 3, 10, 12, 45, tzinfo=dt.UTC)) == (1260310, 745)
    with pytest.raises(Unencodable):
        codec.to_legacy(dt.datetime(2026, 3, 10, 12, 45, 30, tzinfo=dt.UTC))  # HHMM has no seconds


def test_old_transform_names_are_the_same_codecs() -> None:
    julian = build_codec(FieldSpec(column="D", type="date", transform="julian"))
    assert julian.to_api(126335) == _date("cyyddd").to_api(126335) == dt.date(2026, 12, 1)
    pair = build_codec(FieldSpec(column="D", type="datetime", transform="date_time", time_column="T", timezone="UTC"))
    spelled = build_codec(
        FieldSpec(column="D", type="datetime", date="yyyymmdd", time="hhmmss", time_column="T", timezone="UTC")
    )
    assert pair.to_api((20261201, 143005)) == spelled.to_api((20261201, 143005))
    assert pair.columns == spelled.columns == ("D", "T")


_RANK = {"C": 0, "Y": 1, "y": 1, "m": 2, "j": 2, "d": 3}


@st.composite
def _date_patterns(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Any arrangement of a year (4-digit, century + 2-digit, or pivoted) and month/day or day of year."""
    year = draw(st.sampled_from([["Y"], ["C", "y"], ["y"]]))
    day = draw(st.sampled_from([["m", "d"], ["j"]]))
    fields = draw(st.permutations([*year, *day]))
    if "C" in fields and "y" in fields and fields.index("C") + 1 != fields.index("y"):
        fields.remove("C")
        fields.insert(fields.index("y"), "C")  # the century digit is written right before its year
    separator = draw(st.sampled_from(["", "", "-", "/", "."]))
    pattern = "".join(
        f"%{f}" if i == 0 or separator == "" or (f == "y" and fields[i - 1] == "C") else f"{separator}%{f}"
        for i, f in enumerate(fields)
    )
    return pattern, fields


@settings(derandomize=True, max_examples=200)
@given(data=st.data())
def test_any_date_pattern_round_trips_and_claims_order_only_when_it_holds(data: st.DataObject) -> None:
    pattern, fields = data.draw(_date_patterns())
    codec = _date(f"pattern:{pattern}")
    pivoted = "y" in fields and "C" not in fields
    days = _PIVOT if pivoted else _CYY if "C" in fields else st.dates(dt.date(1000, 1, 1))
    a, b = data.draw(days), data.draw(days)
    assert codec.to_api(codec.to_legacy(a)) == a
    stored = codec.to_legacy(a)
    assert codec.to_legacy(codec.to_api(stored)) == stored
    ranks = [_RANK[f] for f in fields]
    assert codec.order_preserving is (ranks == sorted(ranks) and not pivoted)
    if codec.order_preserving and a != b:
        low, high = sorted([a, b])
        assert codec.to_legacy(low) < codec.to_legacy(high)
