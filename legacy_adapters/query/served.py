"""A field's *served* value as a SQL expression, for grouping and aggregating in the database.

A group or an aggregate must be over the values the API serves, not the stored ones:
``DUEDT`` 0 and 99999999 are both null, an impossible ``20230231`` is null too, the
codes 'R' and 'R ' are one ``released``, an unknown code follows the map's ``unmapped``
rule. Each ``Served`` is an expression that is NULL exactly where the API serves null and
takes one value per served value elsewhere, plus how to turn its result into API form.
Dates are taken apart into year, month and day with integer arithmetic (``IntDiv``), which
every engine evaluates alike, so they can also be bucketed by year, month, ISO week or day.
Fields whose served value cannot be told in SQL (free text with leading blanks, zero-padded
numbers, text dates) are refused with the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from legacy_adapters.query.coded import coded_pairs
from legacy_adapters.query.exact import CaseExact, IntDiv
from legacy_adapters.transforms import Undecodable
from legacy_adapters.transforms.booleans import BoolCodes
from legacy_adapters.transforms.dates import DateTimePair
from legacy_adapters.transforms.numbers import DecimalText, DecimalValue, ImpliedDecimal, WholeNumber, whole
from legacy_adapters.transforms.patterns import DatePattern, PatternField
from legacy_adapters.transforms.text import CodeMap, Trim

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField

__all__ = ("BUCKETS", "Bucket", "Served", "as_number", "bucket", "decode_quietly", "served")

Bucket = Literal["year", "month", "week", "day"]
BUCKETS: tuple[Bucket, ...] = ("year", "month", "week", "day")
Kind = Literal["text", "code", "boolean", "number", "date"]


@dataclass(frozen=True, slots=True)
class Served:
    """A field's served value in SQL: NULL where the API serves null, one value per served value elsewhere."""

    expression: sa.ColumnElement[Any]
    decode: Callable[[Any], Any]
    """The expression's result (as any driver returns it) -> the API value."""
    kind: Kind
    places: int | None = None
    """Decimal places of a number's API value (implied decimals, a DECIMAL's scale)."""
    encode: Callable[[Any], Any] | None = None
    """An API value -> the expression's terms, for comparisons (``having``); None when not comparable."""
    as_text: bool = False
    """A decimal served as text (``as_string``): sums, averages and bounds are text too."""

    @property
    def summable(self) -> bool:
        return self.kind == "number"

    @property
    def ordered(self) -> bool:
        """min/max and ranges mean the same on every engine (text order depends on the collation)."""
        return self.kind in ("number", "date")


def as_number(raw: Any) -> Any:
    """A numeric result as a number whatever the driver made of it (sqliteodbc returns computed values as text)."""
    if isinstance(raw, str):
        text = raw.strip()
        try:
            return int(text) if text.lstrip("-").isdigit() else Decimal(text)
        except ArithmeticError:
            return raw
    return raw


def _number_of(raw: Any) -> int | None:
    return whole(as_number(raw))


def _n(value: int) -> sa.ColumnElement[Any]:
    # Constants inline: no parameters inside expressions an engine must see as one (GROUP BY).
    return sa.literal_column(str(int(value)), sa.BigInteger())


def _present(column: sa.ColumnElement[Any], field: BoundField) -> sa.ColumnElement[bool]:
    sentinels = list(field.codec.sentinels)
    present = column.is_not(None)
    return sa.and_(present, column.not_in(sentinels)) if sentinels else present


def _when(condition: sa.ColumnElement[bool], value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.case((condition, value), else_=sa.null())


def served(field: BoundField) -> Served | str:
    """The served value of ``field`` in SQL, or why it cannot be computed there."""
    links = field.codec.links
    if len(field.columns) != 1:
        return f"{field.name} spans two columns; group it by year, month, week or day"
    column: sa.ColumnElement[Any] = field.columns[0]
    present = _present(column, field)
    codes = field.codec.code_map
    if codes is not None and all(isinstance(link, Trim | CodeMap) for link in links):
        return _code(field, codes, column, present)
    if len(links) == 1 and isinstance(links[0], BoolCodes):
        return _boolean(links[0], column, present)
    if field.spec.type == "string" and all(isinstance(link, Trim) for link in links):
        value: sa.ColumnElement[Any] = sa.func.rtrim(column) if links else column
        return Served(_when(present, CaseExact(value)), _text, "text")
    numeric = links[:-1] if len(links) == 2 and isinstance(links[-1], DecimalText) else links
    if len(numeric) == 1 and isinstance(numeric[0], ImpliedDecimal | DecimalValue | WholeNumber):
        text = numeric is not links
        decode = _number(field, numeric[0], text)
        return Served(_when(present, column), decode, "number", field.codec.places, field.codec.to_legacy, text)
    if len(links) == 1 and isinstance(links[0], DatePattern):
        return bucket(field, "day")
    return f"{field.name} cannot be grouped or aggregated: its served value is not computable in SQL"


def _text(raw: Any) -> Any:
    return raw.rstrip(" ") if isinstance(raw, str) else raw


def _code(field: BoundField, codes: CodeMap, column: sa.ColumnElement[Any], present: Any) -> Served | str:
    pairs = coded_pairs(field, codes)
    numeric = bool(pairs) and all(isinstance(stored, int) for stored, _ in pairs)
    compared = column if numeric else CaseExact(column)
    by_name: dict[str, list[Any]] = {}
    for stored, name in pairs:
        by_name.setdefault(name, []).append(stored)
    whens: list[tuple[Any, Any]] = (
        [(sa.not_(present), sa.null())] if field.codec.sentinels else [(column.is_(None), sa.null())]
    )
    whens.extend((compared.in_(stored), sa.literal(name, sa.String())) for name, stored in by_name.items())
    if codes.unmapped == "raw":
        if numeric:
            return f"{field.name} serves unknown numeric codes as text, which engines write differently"
        unknown: Any = CaseExact(sa.func.rtrim(column))
    elif codes.default is not None:
        unknown = sa.literal(codes.default, sa.String())
    else:
        unknown = sa.null()
    return Served(sa.case(*whens, else_=unknown), _text, "code")


def _boolean(codes: BoolCodes, column: sa.ColumnElement[Any], present: Any) -> Served:
    def test(code: str | int | float) -> sa.ColumnElement[bool]:
        if isinstance(code, str):
            return CaseExact(sa.func.rtrim(column)) == code.rstrip(" ")
        return column == code

    expression = sa.case((sa.not_(present), sa.null()), (test(codes.true_code), _n(1)), (test(codes.false_code), _n(0)))
    return Served(expression, lambda raw: None if raw is None else bool(_number_of(raw)), "boolean")


def _number(field: BoundField, link: Any, text: bool) -> Callable[[Any], Any]:
    """Decode a stored number, or an aggregate of stored numbers, into the field's API form."""
    number = _numeric(field, link)
    if not text:
        return number

    def as_text(raw: Any) -> Any:
        value = number(raw)
        return None if value is None else format(value, "f")

    return as_text


def _numeric(field: BoundField, link: Any) -> Callable[[Any], Any]:
    places = field.codec.places

    def decode(raw: Any) -> Any:
        raw = as_number(raw)
        if raw is None:
            return None
        if isinstance(link, ImpliedDecimal):
            number = whole(raw)
            return Decimal(number).scaleb(-link.scale) if number is not None else None
        if isinstance(link, WholeNumber):
            return whole(raw)
        value = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(str(raw))
        # A sum of DECIMALs through a float driver (SQLite) carries float noise past the scale.
        return value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN) if places is not None else value

    return decode


# -- dates -------------------------------------------------------------------------------------


def _digits(x: sa.ColumnElement[Any], after: int, width: int) -> sa.ColumnElement[Any]:
    """The ``width`` digits of ``x`` that have ``after`` digits after them."""
    return IntDiv(x, 10**after) - IntDiv(x, 10 ** (after + width)) * _n(10**width)


def _mod(x: sa.ColumnElement[Any], n: int) -> sa.ColumnElement[Any]:
    return x - IntDiv(x, n) * _n(n)


@dataclass(frozen=True, slots=True)
class _Date:
    """A numeric date pattern taken apart in SQL."""

    year: sa.ColumnElement[Any]
    month: sa.ColumnElement[Any] | None
    day: sa.ColumnElement[Any] | None
    ordinal: sa.ColumnElement[Any] | None
    """Day of the year (``%j`` patterns)."""
    valid: sa.ColumnElement[bool]


def _take_apart(pattern: DatePattern, x: sa.ColumnElement[Any]) -> _Date:
    values: dict[str, sa.ColumnElement[Any]] = {}
    after = 0
    for part in reversed(pattern.parts):
        assert isinstance(part, PatternField)
        values[part.letter] = _digits(x, after, part.width)
        after += part.width
    if "Y" in values:
        year = values["Y"]
    elif "C" in values:
        year = _n(1900) + values["C"] * _n(100) + values["y"]
    else:
        pivot = pattern.pivot_year
        year = _n(pivot // 100 * 100) + values["y"] + sa.case((values["y"] < _n(pivot % 100), _n(100)), else_=_n(0))
    leap = sa.or_(
        sa.and_(_mod(year, 4) == _n(0), _mod(year, 100) != _n(0)),
        _mod(year, 400) == _n(0),
    )
    terms = [x >= _n(0), x < _n(10**after), year >= _n(1), year <= _n(9999)]
    month, day, ordinal = values.get("m"), values.get("d"), values.get("j")
    if ordinal is not None:
        terms += [ordinal >= _n(1), ordinal <= sa.case((leap, _n(366)), else_=_n(365))]
    else:
        assert month is not None and day is not None
        last = sa.case(
            (month == _n(2), sa.case((leap, _n(29)), else_=_n(28))),
            (month.in_([_n(4), _n(6), _n(9), _n(11)]), _n(30)),
            else_=_n(31),
        )
        terms += [month >= _n(1), month <= _n(12), day >= _n(1), day <= last]
    return _Date(year, month, day, ordinal, sa.and_(*terms))


def _days(date: _Date) -> sa.ColumnElement[Any]:
    """Days since 0000-03-01 (proleptic Gregorian), H. Hinnant's days_from_civil in integers."""
    if date.ordinal is not None:
        first = _Date(date.year, _n(1), _n(1), None, date.valid)
        return _days(first) + date.ordinal - _n(1)
    assert date.month is not None and date.day is not None
    march = date.month > _n(2)
    year = date.year - sa.case((march, _n(0)), else_=_n(1))
    era = IntDiv(year, 400)
    of_era = year - era * _n(400)
    shifted = date.month + sa.case((march, _n(-3)), else_=_n(9))
    of_year = IntDiv(shifted * _n(153) + _n(2), 5) + date.day - _n(1)
    of_cycle = of_era * _n(365) + IntDiv(of_era, 4) - IntDiv(of_era, 100) + of_year
    return era * _n(146097) + of_cycle


_ORDINAL_SHIFT = 305
"""``date.fromordinal(days since 0000-03-01 - 305)``: 0001-01-01 is ordinal 1."""


def _from_days(raw: Any) -> Any:
    number = _number_of(raw)
    return None if number is None else dt.date.fromordinal(number - _ORDINAL_SHIFT)


def _from_ymd(raw: Any) -> Any:
    number = _number_of(raw)
    return None if number is None else dt.date(number // 10000, number // 100 % 100, number % 100)


def _from_yj(raw: Any) -> Any:
    number = _number_of(raw)
    return None if number is None else dt.date(number // 1000, 1, 1) + dt.timedelta(days=number % 1000 - 1)


def _from_ym(raw: Any) -> Any:
    number = _number_of(raw)
    return None if number is None else f"{number // 100:04d}-{number % 100:02d}"


def bucket(field: BoundField, part: Bucket) -> Served | str:
    """A date (or a date+time pair's local date) by year, month, ISO week (its Monday) or day."""
    links = field.codec.links
    link = links[0] if len(links) == 1 else None
    pattern = link.date if isinstance(link, DateTimePair) else link
    if not isinstance(pattern, DatePattern):
        return f"{field.name} is not a date: it cannot be grouped by {part}"
    if not pattern.numeric:
        return (
            f"{field.name} is stored as {pattern.label} text, which cannot be taken apart the same way on every engine"
        )
    column: sa.ColumnElement[Any] = field.columns[0]
    date = _take_apart(pattern, column)
    keep = sa.and_(_present(column, field), date.valid)
    if part == "year":
        return Served(_when(keep, date.year), _number_of, "date")
    if part == "week":
        days = _days(date)
        monday = days - _mod(days + _n(2), 7)  # 0000-03-01 was a Wednesday
        return Served(_when(keep, monday), _from_days, "date")
    if date.ordinal is not None:
        if part == "month":
            return f"{field.name} is stored as a day of the year ({pattern.label}); group it by year, week or day"
        yj = date.year * _n(1000) + date.ordinal
        return Served(_when(keep, yj), _from_yj, "date", encode=lambda d: d.year * 1000 + d.timetuple().tm_yday)
    assert date.month is not None and date.day is not None
    if part == "month":
        return Served(_when(keep, date.year * _n(100) + date.month), _from_ym, "date")
    ymd = date.year * _n(10000) + date.month * _n(100) + date.day
    return Served(_when(keep, ymd), _from_ymd, "date", encode=lambda d: d.year * 10000 + d.month * 100 + d.day)


def decode_quietly(decode: Callable[[Any], Any], raw: Any) -> Any:
    """``decode(raw)``, or None for a value the decoder refuses (served as null, like a row's)."""
    try:
        return decode(raw)
    except (Undecodable, ValueError, ArithmeticError):
        return None
