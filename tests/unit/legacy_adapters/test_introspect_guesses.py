"""Value guesses of ``bridgehead introspect``: each one decided by the sampled data, each with its reason.

The shapes are the ones an AS/400 / JD Edwards schema holds (see
``legacy_adapters/samples/distributor.py``): NUMERIC dates arriving as ``Decimal``
in half a dozen encodings, HHMM beside HHMMSS, T/F flags, status codes with '??'.
The property tests encode random dates with one codec and require the guess to
read every value back as the date it was, whichever codec it names.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from legacy_adapters._guesses import FieldGuess, guess_field


def numeric(name: str, values: list[Any], digits: int = 7, *, nullable: bool = False) -> FieldGuess:
    # pyodbc returns Decimal for NUMERIC(n,0): the guesses must see numbers in them.
    column = {"name": name, "type": sa.NUMERIC(digits, 0), "nullable": nullable}
    return guess_field(column, [None if v is None else Decimal(v) for v in values])


def text(name: str, values: list[Any], length: int = 1, *, nullable: bool = False) -> FieldGuess:
    return guess_field({"name": name, "type": sa.CHAR(length), "nullable": nullable}, values)


# Independent encoders: what the legacy programs wrote.
ENCODE = {
    "yyyymmdd": lambda d: d.year * 10000 + d.month * 100 + d.day,
    "yyyyddd": lambda d: d.year * 1000 + d.timetuple().tm_yday,
    "cyymmdd": lambda d: (d.year - 1900) * 10000 + d.month * 100 + d.day,
    "cyyddd": lambda d: (d.year - 1900) * 1000 + d.timetuple().tm_yday,
    "yymmdd": lambda d: d.year % 100 * 10000 + d.month * 100 + d.day,
    "mmddyyyy": lambda d: d.month * 1000000 + d.day * 10000 + d.year,
}
# Independent decoders (pivot 1940, as the codecs assume), to check what a guess would serve.
DECODE = {
    "yyyymmdd": lambda v: dt.date(v // 10000, v // 100 % 100, v % 100),
    "yyyyddd": lambda v: dt.date(v // 1000, 1, 1) + dt.timedelta(days=v % 1000 - 1),
    "cyymmdd": lambda v: dt.date(1900 + v // 10000, v // 100 % 100, v % 100),
    "cyyddd": lambda v: dt.date(1900 + v // 1000, 1, 1) + dt.timedelta(days=v % 1000 - 1),
    "yymmdd": lambda v: dt.date((1900 if v // 10000 >= 40 else 2000) + v // 10000, v // 100 % 100, v % 100),
    "mmddyyyy": lambda v: dt.date(v % 10000, v // 1000000, v // 10000 % 100),
    "ddmmyyyy": lambda v: dt.date(v % 10000, v // 10000 % 100, v // 1000000),
    "mmddyy": lambda v: dt.date((1900 if v % 100 >= 40 else 2000) + v % 100, v // 10000, v // 100 % 100),
    "yyddd": lambda v: dt.date((1900 if v // 1000 >= 40 else 2000) + v // 1000, 1, 1) + dt.timedelta(days=v % 1000 - 1),
}


def _decodes(codec: str, value: int) -> dt.date | None:
    try:
        return DECODE[codec](value)
    except ValueError:
        return None


@pytest.mark.parametrize(
    ("codec", "first", "last"),
    [
        ("yyyyddd", 2024003, 2026365),
        ("cyyddd", 124029, 126355),
        ("cyymmdd", 1240105, 1270103),
        ("yymmdd", 240104, 270123),
        ("yyyymmdd", 20240120, 20270211),
    ],
)
def test_each_date_encoding_is_recognised_from_numeric_values(codec: str, first: int, last: int) -> None:
    days = [dt.date(2024, 1, 3) + dt.timedelta(days=n * 7) for n in range(150)]
    guess = numeric("ORDDT", [ENCODE[codec](d) for d in days] + [0], 8)
    assert (guess.type, guess.date, guess.transform, guess.null_if) == ("date", codec, None, [0])
    assert any("reads as a" in why and "0 read as null" in why for why in guess.why), guess.why


@settings(max_examples=40, deadline=None)
@given(
    codec=st.sampled_from(sorted(ENCODE)),
    days=st.lists(st.dates(dt.date(1960, 1, 1), dt.date(2035, 12, 31)), min_size=30, max_size=80, unique=True),
)
def test_the_guessed_codec_reads_every_value_as_the_date_it_was(codec: str, days: list[dt.date]) -> None:
    stored = [ENCODE[codec](d) for d in days]
    guess = numeric("DUEDT", stored, 8)
    assert guess.date is not None, (codec, guess.why)
    # Another codec may be named only if it serves the same dates (the ambiguity is then harmless).
    assert [_decodes(guess.date, v) for v in stored] == days, (codec, guess.date, guess.why)


@pytest.mark.parametrize("as_driver_gives", [int, Decimal, float], ids=["sqlite3", "pyodbc", "sqliteodbc"])
def test_whole_numbers_in_any_driver_form_are_numbers(as_driver_gives: Any) -> None:
    stored = [2025204, 2024003, 2026365] * 10  # YYYYDDD in a NUMERIC(7,0)
    column = {"name": "ORDDT", "type": sa.NUMERIC(7, 0), "nullable": False}
    assert guess_field(column, [as_driver_gives(v) for v in stored]).date == "yyyyddd"
    assert guess_field(column, [Decimal("2025204.5")] * 30).date is None  # not a whole number: no packed date


def test_a_wrong_codec_is_never_chosen_when_one_fits_without_impossible_values() -> None:
    # 2025-12-01 as YYYYDDD is 2025335; as CYYMMDD that is month 53: impossible, so never chosen.
    guess = numeric("ORDDT", [2025335, 2024001, 2026100] * 10)
    assert guess.date == "yyyyddd"


@pytest.mark.parametrize(
    ("values", "codec"),
    [
        ([707, 1456, 1118, 1858, 0, 2359], "hhmm"),  # every value < 2400, minutes < 60
        ([70705, 145600, 111800, 185959, 2359], "hhmmss"),  # 2359 alone would be HHMM; the others are not
        ([14300599, 9000000, 23595999], "hhmmssth"),
        ([n * 997 for n in range(1, 80)], "seconds"),  # below 86400, digits no clock shows (997 = 00:09:97)
        ([1960, 705], None),  # 19:60 is no HHMM, 00:19:60 no HHMMSS, two values are no evidence of seconds
    ],
)
def test_time_codecs_from_the_digit_patterns(values: list[int], codec: str | None) -> None:
    guess = numeric("ORDTM", values, 8)
    assert guess.time == codec, guess.why
    if codec is not None:
        assert guess.type == "time" and any(codec.upper() in why.upper() for why in guess.why)


def test_hhmm_says_why_it_is_not_hhmmss() -> None:
    guess = numeric("SHPTM", [600, 2157, 1230] * 10, 4)
    assert guess.time == "hhmm"
    assert any("before 00:24" in why for why in guess.why)


def test_a_time_only_when_named_like_one() -> None:
    assert numeric("QTY", [707, 1456, 1118], 4).time is None


@pytest.mark.parametrize("name", ["QTY", "LINE", "CUSNO", "ORDNO", "SEQ"])
def test_counts_and_numbers_are_not_dates(name: str) -> None:
    values = {
        "QTY": list(range(1, 50)),
        "LINE": [1, 2, 3, 4] * 20,
        "CUSNO": [10000 + 7 * n for n in range(100)],
        "ORDNO": [500000 + n for n in range(1000)],
        "SEQ": list(range(1, 300)),
    }[name]
    guess = numeric(name, values, 8)
    assert (guess.type, guess.date, guess.time) == ("integer", None, None), guess.why


def test_a_t_f_flag_is_a_boolean_with_its_codes_not_a_map() -> None:
    guess = text("RUSH", ["T", "F", "F", "T"])
    assert (guess.type, guess.transform, guess.bool_values) == ("boolean", "boolean", ("T", "F"))
    assert guess.hints == []
    assert text("BACKORD", ["Y", "N"]).transform == "yes_no"


def test_status_codes_get_a_map_skeleton_and_unknown_codes_are_called_out() -> None:
    values = ["OP", "SH", "IN", "CN", "PK"] * 40 + ["??"] * 8
    guess = text("STATUS", values, 2)
    assert guess.hints[0] == "map: {CN: cn, IN: in, OP: op, PK: pk, SH: sh}"
    assert any(hint.startswith("unmapped: null") for hint in guess.hints)
    assert any("'??' on 8 rows of 208 sampled" in why for why in guess.why), guess.why
    # Without a placeholder value, nothing is called unknown.
    assert not any("unknown" in why for why in text("STATUS", ["OP", "SH"] * 20, 2).why)


def test_declared_nullable_without_nulls_is_not_marked_nullable_and_says_why() -> None:
    guess = numeric("ORDNO", [500000, 500001], 8, nullable=True)
    assert guess.nullable is False and guess.keyable
    assert any("no NULL in the sampled rows: not marked nullable" in why for why in guess.why)
    with_nulls = numeric("SHIPDT", [1261201, None], 7, nullable=True)
    assert with_nulls.nullable is True and not with_nulls.keyable
    assert any("1 NULLs in the sampled rows: nullable" in why for why in with_nulls.why)
    # Declared NOT NULL: nothing to say, unless the data disagrees (sqliteodbc reports every column NOT NULL).
    assert not any("NULL" in why for why in numeric("ORDNO", [1, 2], 8).why)
    contradicted = numeric("SHIPDT", [1261201, None, None], 7, nullable=False)
    assert contradicted.nullable is True
    assert "2 NULLs in the sampled rows although the catalogue says NOT NULL: nullable" in contradicted.why


def test_no_rows_keeps_the_declared_nullability() -> None:
    assert numeric("NOTE", [], 8, nullable=True).nullable is True
