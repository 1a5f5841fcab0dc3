"""Guess a column's API type and transform from its SQL type and a sample of its values.

Used by ``introspect.py``. Every guess carries the reason, written into the
starter mapping as a YAML comment, because a guess a user cannot check is worse
than none. Value-based guesses look at every sampled value: one value that
does not fit (a date column holding ``12345``) means no guess, not a majority vote.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from legacy_adapters._naming import words

__all__ = ("DATE_CODECS", "PIVOT_YEAR", "PLAUSIBLE_YEARS", "FieldGuess", "guess_field")

Scalar = str | int | float

_DATE_SENTINELS = frozenset({0, 99999, 999999, 9999999, 99999999})
"""Stored values legacy programs wrote for "no date" / "open-ended": zero and all nines."""
_BOOLEANS = (("yes_no", ("Y", "N")), ("one_zero", ("1", "0")), ("active_inactive", ("A", "I")))
_PAIRS = (("T", "F"), ("J", "N"), ("S", "N"), ("O", "N"))
"""Other (true, false) letter pairs, served through ``transform: boolean`` with ``bool_values``."""
_MDY = re.compile(r"^\d{2}/\d{2}/\d{4}$")
_CODE = re.compile(r"^[A-Z0-9]{1,4}$")
_MAX_CODES = 12
"""More distinct codes than this looks like data, not a status code."""
_MAX_PLACEHOLDER_SHARE = 0.2
"""Values that look like no code ('??', '*') on more rows than this mean the column holds no codes."""
_MIN_VALUES_WITHOUT_HINT = 20
"""Short date encodings are easy to hit by chance: without a date-like name, want this many values."""
_AMOUNT_WORDS = frozenset({"amount", "price", "cost", "quantity", "hours", "limit", "balance", "total", "hand"})
PLAUSIBLE_YEARS = (1940, dt.date.today().year + 50)
"""Years a guessed date may fall in: earlier ones are more likely small numbers, later ones a wrong codec."""
PIVOT_YEAR = 1940
"""The first year a two-digit year stands for (40-99 = 19xx, 00-39 = 20xx): the codecs' default ``pivot_year``."""


@dataclass
class FieldGuess:
    """What the introspector proposes for one column."""

    column: str
    type: str = "string"
    transform: str | None = None
    date: str | None = None
    """Date codec (``date: cyymmdd``) of a date stored as a number or text."""
    time: str | None = None
    """Time codec (``time: hhmm``) of a time of day stored as a number."""
    bool_values: tuple[str, str] | None = None
    decimals: int | None = None
    """A DECIMAL column's scale, so every driver's value is served with it (sqliteodbc gives text)."""
    length: int | None = None
    null_if: list[Scalar] | None = None
    nullable: bool = False
    why: list[str] = field(default_factory=list)
    """Comment lines written above the field."""
    hints: list[str] = field(default_factory=list)
    """Commented-out options written below the field (a ``map`` skeleton)."""
    skip: str | None = None
    """Why the column is not served at all (a type the gateway cannot represent)."""

    @property
    def keyable(self) -> bool:
        """Could address a row: not null, not a moment, not a float."""
        return self.skip is None and not self.nullable and self.type not in ("datetime", "number")


def _sql_kind(type_: sa.types.TypeEngine[Any]) -> str | None:
    if isinstance(type_, sa.Boolean):  # SQL Server's BIT too
        return "boolean"
    if type(type_).__name__ in ("MONEY", "SMALLMONEY"):
        # SQL Server's money types are not Numeric subclasses in SQLAlchemy, but arrive as Decimal.
        return "decimal"
    if isinstance(type_, sa.Uuid):
        return "string"
    if isinstance(type_, sa.Integer):
        return "integer"
    if isinstance(type_, sa.Float):
        return "number"
    if isinstance(type_, sa.Numeric):
        return "integer" if type_.scale == 0 else "decimal"
    if isinstance(type_, sa.DateTime):
        return "datetime"
    if isinstance(type_, sa.Date):
        return "date"
    if isinstance(type_, sa.Time):
        return "time"
    if isinstance(type_, sa.String):
        return "string"
    return None


# -- dates and times stored as numbers ---------------------------------------------------------------


def _two_digit(yy: int) -> int:
    return 1900 + yy if yy >= PIVOT_YEAR % 100 else 2000 + yy


def _ymd(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _ordinal(year: int, day_of_year: int) -> dt.date | None:
    if not 1 <= day_of_year <= (366 if _leap(year) else 365) or not 1 <= year <= 9999:
        return None
    return dt.date(year, 1, 1) + dt.timedelta(days=day_of_year - 1)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_DateReader = Callable[[int], "dt.date | None"]
DATE_CODECS: tuple[tuple[str, str, int, bool, _DateReader], ...] = (
    # (codec, label, widest value, needs a date-like name or many values, reader)
    ("yyyymmdd", "YYYYMMDD", 99991231, False, lambda v: _ymd(v // 10000, v // 100 % 100, v % 100)),
    ("yyyyddd", "YYYYDDD", 9999366, False, lambda v: _ordinal(v // 1000, v % 1000)),
    ("cyymmdd", "CYYMMDD", 9991231, True, lambda v: _ymd(1900 + v // 10000, v // 100 % 100, v % 100)),
    ("cyyddd", "CYYDDD", 999366, True, lambda v: _ordinal(1900 + v // 1000, v % 1000)),
    ("yymmdd", "YYMMDD", 991231, True, lambda v: _ymd(_two_digit(v // 10000), v // 100 % 100, v % 100)),
    ("mmddyyyy", "MMDDYYYY", 12319999, False, lambda v: _ymd(v % 10000, v // 1000000, v // 10000 % 100)),
    ("ddmmyyyy", "DDMMYYYY", 31129999, False, lambda v: _ymd(v % 10000, v // 10000 % 100, v // 1000000)),
    ("mmddyy", "MMDDYY", 123199, True, lambda v: _ymd(_two_digit(v % 100), v // 10000, v // 100 % 100)),
    ("yyddd", "YYDDD", 99366, True, lambda v: _ordinal(_two_digit(v // 1000), v % 1000)),
)
"""Named date codecs a number may hold, most specific first (the order breaks exact ties)."""
_MAX_IMPOSSIBLE = 0.05
"""Dirty legacy data holds a few impossible dates (20230231); more than this share means it is no date."""


def _plausible(day: dt.date | None) -> bool:
    return day is not None and PLAUSIBLE_YEARS[0] <= day.year <= PLAUSIBLE_YEARS[1]


def _date_guess(guess: FieldGuess, distinct: set[int], date_named: bool) -> bool:
    """Pick the date codec every sampled number fits; say which others fit too. False: no date."""
    real = sorted(v for v in distinct if v not in _DATE_SENTINELS)
    if not real or real[-1] < 10000:  # four digits or fewer: a count, a code, a year, never one of these dates
        return False
    fits: list[tuple[int, int, int, str, str, list[int]]] = []
    for rank, (codec, label, widest, shy, read) in enumerate(DATE_CODECS):
        if real[-1] > widest or real[0] < 0 or (shy and not date_named and len(real) < _MIN_VALUES_WITHOUT_HINT):
            continue
        days = [read(v) for v in real]
        bad = [v for v, d in zip(real, days, strict=True) if not _plausible(d)]
        if len(bad) > _MAX_IMPOSSIBLE * len(real):
            continue
        years = sorted(d.year for d in days if d is not None and _plausible(d))
        distance = abs(years[len(years) // 2] - dt.date.today().year)
        fits.append((len(bad), distance, rank, codec, label, bad))
    if not fits:
        return False
    # Fewest impossible values first, then the reading whose dates sit nearest today, then the listed order.
    fits.sort()
    _, _, _, codec, label, bad = fits[0]
    seen: list[str | int | float] = sorted(distinct & _DATE_SENTINELS)
    guess.type, guess.date, guess.null_if = "date", codec, seen or None
    lowest, highest = real[0], real[-1]
    reason = f"every sampled value ({len(real)} distinct, {lowest}..{highest}) reads as a {label} date"
    if seen:
        reason += f"; {' and '.join(map(str, seen))} read as null"
    guess.why.append(reason)
    if bad:
        guess.why.append(f"{len(bad)} sampled values are impossible dates (e.g. {bad[0]}): served as null, logged")
    others = [other for *_, other, _ in fits[1:]]
    if others:
        guess.why.append(
            f"also readable as {', '.join(others)}: chosen for the fewest impossible and most recent dates"
        )
    return True


def _time_guess(guess: FieldGuess, distinct: set[int]) -> bool:
    """HHMM or HHMMSS from the digit patterns of a column named like a time."""
    if not distinct or min(distinct) < 0:
        return False
    if all(v < 2400 and v % 100 < 60 for v in distinct):
        guess.type, guess.time = "time", "hhmm"
        guess.why.append(
            f"named like a time and every sampled value ({min(distinct)}..{max(distinct)}) is below 2400 with"
            " minutes < 60: HHMM (as HHMMSS every time would fall before 00:24)"
        )
        return True
    if all(v <= 235959 and v // 100 % 100 < 60 and v % 100 < 60 for v in distinct):
        guess.type, guess.time = "time", "hhmmss"
        guess.why.append(
            f"named like a time and every sampled value ({min(distinct)}..{max(distinct)}) is a valid HHMMSS"
        )
        return True
    if (
        all(v <= 23595999 and v // 10000 % 100 < 60 and v // 100 % 100 < 60 for v in distinct)
        and max(distinct) > 235959
    ):
        guess.type, guess.time = "time", "hhmmssth"
        guess.why.append("named like a time and the sampled values have eight digits HHMMSSth (hundredths)")
        return True
    if max(distinct) < 86400 and len(distinct) >= _MIN_VALUES_WITHOUT_HINT:
        guess.type, guess.time = "time", "seconds"
        guess.why.append("named like a time and every sampled value is below 86400: seconds since midnight")
        return True
    return False


def _integral(values: list[Any]) -> list[int] | None:
    """The values as ints when every one is a whole number.

    A NUMERIC(8,0) column arrives as ``Decimal`` through pyodbc and as ``float`` through
    sqliteodbc (``2025204.0``); both are the integers the legacy program wrote.
    """
    numbers: list[int] = []
    for v in values:
        if isinstance(v, bool):
            return None
        if isinstance(v, int):
            numbers.append(v)
        elif isinstance(v, Decimal | float) and _whole(v):
            numbers.append(int(v))
        else:
            return None
    return numbers


def _whole(v: Decimal | float) -> bool:
    return v.is_finite() and v == int(v) if isinstance(v, Decimal) else v.is_integer()


def _int_guess(guess: FieldGuess, values: list[Any], name_words: list[str]) -> None:
    numbers = _integral(values)
    if not numbers:
        return
    distinct = set(numbers)
    if "time" in name_words and _time_guess(guess, distinct):
        return
    if _date_guess(guess, distinct, bool({"date", "day"} & set(name_words))):
        return
    if distinct == {0, 1}:
        guess.type, guess.transform = "boolean", "one_zero"
        guess.why.append("only 1 and 0 sampled: a flag")
        return
    if _AMOUNT_WORDS & set(name_words):
        guess.why.append("if this integer holds implied decimals (1250 = 12.50), set type: decimal and scale: 2")


# -- text ------------------------------------------------------------------------------------------


def _flag_guess(guess: FieldGuess, distinct: set[str]) -> bool:
    for transform, (true, false) in _BOOLEANS:
        # Y/N seen alone is still a flag (a soft-delete column is often all 'N'); 1 or A alone is not.
        if distinct == {true, false} or (transform == "yes_no" and distinct and distinct <= {true, false}):
            guess.type, guess.transform = "boolean", transform
            codes = " and ".join(repr(c) for c in sorted(distinct, reverse=True))
            guess.why.append(f"only {codes} sampled: a flag")
            return True
    for true, false in _PAIRS:
        if distinct == {true, false}:
            # A two-letter flag is a boolean with its codes, not a code map {F: f, T: t}.
            guess.type, guess.transform, guess.bool_values = "boolean", "boolean", (true, false)
            guess.why.append(f"only {true!r} and {false!r} sampled: a flag ({true} = true)")
            return True
    return False


def _code_guess(guess: FieldGuess, texts: list[str]) -> None:
    """A status-like column: a map skeleton, and the stored values that look like no code at all."""
    counts = Counter(texts)
    codes = sorted(c for c in counts if _CODE.match(c))
    odd = sorted((c for c in counts if not _CODE.match(c)), key=lambda c: -counts[c])
    if not 1 < len(codes) <= _MAX_CODES or len(counts) > _MAX_CODES + 2 or len(texts) < 3 * len(counts):
        return
    if sum(counts[c] for c in odd) > _MAX_PLACEHOLDER_SHARE * len(texts):
        return  # too many rows of it to be a stray placeholder: free text, not codes
    guess.why.append(
        f"{len(codes)} codes sampled ({', '.join(f'{c} x{counts[c]}' for c in codes)}): name them and uncomment the map"
    )
    guess.hints.append("map: {" + ", ".join(f"{c}: {c.lower()}" for c in codes) + "}")
    if odd:
        listed = ", ".join(f"{c!r} on {counts[c]} rows" for c in odd)
        guess.why.append(
            f"unknown codes: {listed} of {len(texts)} sampled look like no code (a placeholder?); "
            "served as stored until a map says otherwise"
        )
        guess.hints.append("unmapped: null   # or raw (served as stored), or {default: unknown}")


def _text_guess(guess: FieldGuess, values: list[Any], length: int | None, is_char: bool) -> None:
    texts = [v.rstrip(" ") for v in values if isinstance(v, str)]
    distinct = set(texts)
    if texts and len(texts) == len(values) and length is not None and length <= 2 and _flag_guess(guess, distinct):
        return
    if texts and distinct - {""} and all(t == "" or _MDY.match(t) for t in distinct):
        guess.type, guess.date = "date", "mm/dd/yyyy"
        guess.null_if = [""] if "" in distinct else None
        guess.why.append(
            "every sampled value is an MM/DD/YYYY string" + ("; '' read as null" if "" in distinct else "")
        )
        return
    digits = [int(t) for t in distinct if t.isascii() and t.isdigit() and len(t) == 8]
    if digits and len(digits) == len(distinct) and all(_plausible(DATE_CODECS[0][4](v)) for v in digits):
        # Not applied: writes and filters would then compare the text column with numbers.
        guess.why.append("the values look like YYYYMMDD digits: date: yyyymmdd, type: date would serve dates")
    if is_char:
        guess.transform, guess.length = "trim", length
        guess.why.append(f"CHAR({length}): served without its padding blanks, padded again for comparisons")
    if texts and (length or 0) <= 4:
        _code_guess(guess, texts)


def guess_field(column: Mapping[str, Any], values: list[Any], *, sample: str = "the sampled rows") -> FieldGuess:
    """Propose the field for a reflected column (``Inspector.get_columns`` entry) and its sampled values.

    Args:
        column: name, SQL type and nullability from the catalogue.
        values: the column's values in the sampled rows (SQL NULLs included).
        sample: how the comments name the sample ("the 1000 sampled rows", "the whole table").
    """
    type_ = column["type"]
    declared_nullable = bool(column.get("nullable", True))
    guess = FieldGuess(column=column["name"], nullable=declared_nullable)
    kind = _sql_kind(type_)
    if kind is None:
        guess.skip = f"type {type_!r} has no API form"
        return guess
    guess.type = kind
    present = [v for v in values if v is not None]
    if declared_nullable and values and len(present) == len(values):
        # Legacy files declare most columns NULL-able and hold none; `nullable: true` would make them
        # unsortable and keep them out of keys. Decided by the data; `bridgehead check` counts the NULLs.
        guess.nullable = False
        guess.why.append(f"declared NULL-able but no NULL in {sample}: not marked nullable (check verifies)")
    elif values and len(present) < len(values):
        # The data wins over the catalogue: sqliteodbc reports every column NOT NULL, for one.
        guess.nullable = True
        said = "" if declared_nullable else " although the catalogue says NOT NULL"
        guess.why.append(f"{len(values) - len(present)} NULLs in {sample}{said}: nullable")
    name_words = words(column["name"])
    scale = getattr(type_, "scale", None)
    if kind == "decimal" and isinstance(type_, sa.Numeric) and scale:
        guess.decimals = scale
    if kind == "integer":
        _int_guess(guess, present, name_words)
    elif kind == "string":
        length = getattr(type_, "length", None)
        _text_guess(guess, present, length, isinstance(type_, sa.CHAR | sa.NCHAR))
    if not values and kind in ("integer", "string"):
        guess.why.append("no rows sampled: guessed from the SQL type alone")
    return guess
