"""Properties every transform promises: both round trips, and order where it claims it.

Each case pairs a field spec with strategies for canonical stored values and for API values.
Every registered name must have a case, so a new transform cannot skip these properties.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from legacy_adapters.mapping.model import FieldSpec
from legacy_adapters.transforms import TRANSFORMS, FieldCodec, Undecodable, build_codec

UTC = dt.UTC
ZONES = ("Europe/London", "America/New_York", "Australia/Lord_Howe")

# Characters from the space up: below it, Python's order of padded strings differs from the API's.
_chars = st.characters(min_codepoint=0x20, exclude_categories=("Cs",))
_unpadded = st.text(_chars, max_size=6).map(lambda s: s.rstrip(" "))
_cyy_dates = st.dates(dt.date(1900, 1, 1), dt.date(2899, 12, 31))
_times = st.times().map(lambda t: t.replace(microsecond=0))


def _ymd(day: dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def _hms(time: dt.time) -> int:
    return time.hour * 10000 + time.minute * 100 + time.second


def _unambiguous(local: dt.datetime) -> bool:
    """Neither in a repeated hour nor skipped: the wall time names exactly one instant."""
    return local.replace(fold=0).utcoffset() == local.replace(fold=1).utcoffset()


@st.composite
def _stored_pairs(draw: st.DrawFn, zone: str) -> tuple[int, int]:
    naive = draw(st.datetimes(dt.datetime(1900, 1, 2), dt.datetime(9000, 1, 1)).map(lambda d: d.replace(microsecond=0)))
    assume(_unambiguous(naive.replace(tzinfo=ZoneInfo(zone))))
    return _ymd(naive.date()), _hms(naive.time())


def _instants(zone: str) -> st.SearchStrategy[dt.datetime]:
    return (
        st.datetimes(dt.datetime(1900, 1, 2), dt.datetime(9000, 1, 1), timezones=st.just(UTC))
        .map(lambda d: d.replace(microsecond=0))
        .filter(lambda d: _unambiguous(d.astimezone(ZoneInfo(zone))))
    )


_stripped = st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=20).map(str.strip)

CASES: dict[str, tuple[FieldSpec, st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "trim": (
        FieldSpec(column="C", transform="trim", length=6),
        _unpadded.map(lambda s: s.ljust(6)),
        _unpadded,
    ),
    "trim unsized": (FieldSpec(column="C", transform="trim"), _unpadded, _unpadded),
    "strip": (FieldSpec(column="C", transform="strip"), _stripped, _stripped),
    "zero_padded": (
        FieldSpec(column="C", transform="zero_padded", length=6),
        st.integers(0, 999_999).map(lambda n: f"{n:06d}"),
        st.integers(0, 999_999),
    ),
    "code map": (
        FieldSpec(column="C", map={"R": "released", "H": "on_hold", 7: "seven"}),
        st.sampled_from(["R", "H", 7]),
        st.sampled_from(["released", "on_hold", "seven"]),
    ),
    "trim + code map": (
        FieldSpec(column="C", transform="trim", length=2, map={"R": "released", "HX": "on_hold"}),
        st.sampled_from(["R ", "HX"]),
        st.sampled_from(["released", "on_hold"]),
    ),
    "implied decimals": (
        FieldSpec(column="C", type="decimal", scale=2),
        st.integers(-(10**15), 10**15),
        st.decimals(-(10**13), 10**13, places=2),
    ),
    "yyyymmdd": (FieldSpec(column="C", transform="yyyymmdd"), st.dates().map(_ymd), st.dates()),
    "cyymmdd": (
        FieldSpec(column="C", transform="cyymmdd"),
        _cyy_dates.map(lambda d: (d.year - 1900) // 100 * 1_000_000 + _ymd(d) % 1_000_000),
        _cyy_dates,
    ),
    "julian": (
        FieldSpec(column="C", transform="julian"),
        _cyy_dates.map(lambda d: (d.year - 1900) * 1000 + d.timetuple().tm_yday),
        _cyy_dates,
    ),
    "mm/dd/yyyy": (
        FieldSpec(column="C", transform="mm/dd/yyyy"),
        st.dates().map(lambda d: f"{d.month:02d}/{d.day:02d}/{d.year:04d}"),
        st.dates(),
    ),
    "hhmmss": (FieldSpec(column="C", transform="hhmmss"), _times.map(_hms), _times),
    **{
        f"date_time {zone}": (
            FieldSpec(column="D", transform="date_time", time_column="T", timezone=zone),
            _stored_pairs(zone),
            _instants(zone),
        )
        for zone in ZONES
    },
    **{
        name: (FieldSpec(column="C", transform=name), st.sampled_from(codes), st.booleans())
        for name, codes in {"yes_no": ["Y", "N"], "one_zero": [1, 0], "active_inactive": ["A", "I"]}.items()
    },
    "boolean": (
        FieldSpec(column="C", transform="boolean", bool_values=("T", "F")),
        st.sampled_from("TF"),
        st.booleans(),
    ),
    "identity": (FieldSpec(column="C"), st.text(), st.text()),
}


def test_every_registered_transform_has_a_case() -> None:
    named = {case.split()[0] for case in CASES}
    assert set(TRANSFORMS) <= named


@pytest.mark.parametrize("case", CASES)
@given(data=st.data())
def test_stored_value_survives_decode_then_encode(case: str, data: st.DataObject) -> None:
    spec, stored, _ = CASES[case]
    codec = build_codec(spec)
    raw = data.draw(stored)
    assert codec.to_legacy(codec.to_api(raw)) == raw


@pytest.mark.parametrize("case", CASES)
@given(data=st.data())
def test_api_value_survives_encode_then_decode(case: str, data: st.DataObject) -> None:
    spec, _, api = CASES[case]
    codec = build_codec(spec)
    value = data.draw(api)
    assert codec.to_api(codec.to_legacy(value)) == value


ORDERED = [case for case, (spec, _, _) in CASES.items() if build_codec(spec).order_preserving]


def test_order_claims() -> None:
    unordered = set(CASES) - set(ORDERED)
    assert unordered == {
        "code map",
        "strip",
        "trim + code map",
        "mm/dd/yyyy",
        "yes_no",
        "one_zero",
        "active_inactive",
        "boolean",
    }


@pytest.mark.parametrize("case", ORDERED)
@given(data=st.data())
def test_order_preserving_transforms_keep_api_order(case: str, data: st.DataObject) -> None:
    spec, _, api = CASES[case]
    codec: FieldCodec = build_codec(spec)
    a, b = data.draw(api), data.draw(api)
    assume(a != b)
    low, high = sorted([a, b])
    assert codec.to_legacy(low) < codec.to_legacy(high)


def test_implied_decimal_case_is_what_it_says() -> None:
    # Guards the property above against a vacuous codec: 1250 really is 12.50.
    assert build_codec(CASES["implied decimals"][0]).to_api(1250) == Decimal("12.50")


def _as_decimals(raw: Any) -> Any:
    """``raw`` as pyodbc returns it from NUMERIC(n,0) columns: every int becomes a Decimal."""
    if isinstance(raw, tuple):
        return tuple(_as_decimals(r) for r in raw)
    return Decimal(raw) if type(raw) is int else raw


INTEGER_CODED = [
    case
    for case in CASES
    if case.split()[0] in {"implied", "yyyymmdd", "cyymmdd", "julian", "hhmmss", "date_time", "one_zero", "code"}
]


@pytest.mark.parametrize("case", INTEGER_CODED)
@given(data=st.data())
def test_integral_decimals_decode_and_encode_as_ints_do(case: str, data: st.DataObject) -> None:
    spec, stored, _ = CASES[case]
    codec = build_codec(spec)
    raw = data.draw(stored)
    from_decimal = codec.to_api(_as_decimals(raw))
    assert from_decimal == codec.to_api(raw)
    assert codec.to_legacy(from_decimal) == raw
    assert codec.api_decoder()(_as_decimals(raw)) == from_decimal


def _outcome(decode: Any, raw: Any) -> Any:
    try:
        return ("value", decode(raw))
    except Undecodable:
        return ("undecodable",)


@pytest.mark.parametrize("case", CASES)
@given(data=st.data())
def test_a_generated_row_decoder_decodes_as_the_codec_does(case: str, data: st.DataObject) -> None:
    """The row decoder writes out each codec's null test and steps (``api_plan``): same values, same errors."""
    from legacy_adapters.query.rows import _generated

    spec, stored, _ = CASES[case]
    codec = build_codec(spec)
    pair = len(codec.columns) == 2
    step = ("f", codec.api_decoder(), 0, (0, 1) if pair else None)
    decode, decode_all = _generated((step,), (codec.api_plan(),))
    # Canonical values, SQL NULL and the field's sentinels (which read back as null).
    sentinels = [None, *(spec.null_if or [])]
    raw = data.draw(st.one_of(stored, st.sampled_from([(s, 0) if pair else s for s in sentinels])))
    row = raw if pair else (raw,)
    expected = _outcome(codec.to_api, raw)
    assert _outcome(lambda r: decode(r)["f"], row) == expected
    # A dirty row goes to the checked loop (which serves the value as null and logs it); a clean one does not.
    checked = {"f": "checked"}
    batch = decode_all([row, row], lambda _r: checked)
    assert batch == ([checked, checked] if expected[0] == "undecodable" else [{"f": expected[1]}] * 2)


# Whatever a driver or a hand-edited table can hand back, well-formed or not.
_hostile_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.sampled_from([0, 1, -1, 99999999, 20230231, 20260101, 235959, 10**8, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("1"), Decimal("1.0"), Decimal("-0"), Decimal("NaN"), Decimal("1E+2")]),
    st.text(max_size=12),
    st.text(max_size=6).map(lambda s: s.ljust(10)),
    st.sampled_from(["Y", "N ", " Y", "1", " 0 ", "", "  ", "R", "r", "C         "]),
    st.binary(max_size=4),
    st.dates(),
)


def _hostile(pair: bool) -> st.SearchStrategy[Any]:
    if not pair:
        return _hostile_scalars
    return st.one_of(st.tuples(_hostile_scalars, _hostile_scalars), _hostile_scalars, st.lists(_hostile_scalars))


def _result(decode: Any, raw: Any) -> Any:
    """What a decode does with ``raw``, comparable across paths (NaN included): its value, or that it is dirty
    (any of ``DECODING_ERRORS``, which a row decoder serves as null); any other error is left to fail the test."""
    from legacy_adapters.transforms.base import DECODING_ERRORS

    try:
        return ("value", repr(decode(raw)))
    except DECODING_ERRORS:
        return ("dirty",)


@pytest.mark.parametrize("case", CASES)
@given(data=st.data())
def test_every_decode_path_does_what_to_api_does_with_hostile_values(case: str, data: st.DataObject) -> None:
    """The row loop's fast paths (``api_decoder``, the generated decoder's written-out ``Inline`` steps and
    null tests) are the codec's ``to_api`` and nothing else: same value, or dirty alike, for any stored value;
    and ``to_api`` itself raises nothing but ``Undecodable`` (a signalling NaN, a malformed pair)."""
    from legacy_adapters.query.rows import _generated

    spec, stored, _ = CASES[case]
    codec = build_codec(spec)
    pair = len(codec.columns) == 2
    raw = data.draw(st.one_of(stored, _hostile(pair)))
    # The one error to_api may raise: every caller (a row decoder, a migration check) expects it.
    with contextlib.suppress(Undecodable):
        codec.to_api(raw)
    expected = _result(codec.to_api, raw)
    assert _result(codec.api_decoder(), raw) == expected
    step = ("f", codec.api_decoder(), 0, (0, 1) if pair else None)
    decode, _ = _generated((step,), (codec.api_plan(),))
    if pair and not (isinstance(raw, tuple) and len(raw) == 2):
        return  # a row holds two columns: only a two-value pair reaches the generated decoder
    assert _result(lambda r: decode(r)["f"], raw if pair else (raw,)) == expected
