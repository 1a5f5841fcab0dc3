"""Parse API values (query strings, URL keys, token claims, JSON bodies) into typed values, within bounds.

The field's API ``type`` decides the form: ``2026-12-01`` is a date, ``true`` a
boolean, ``12.50`` a Decimal. Its ``ValueBounds`` decide what its stored column
can hold, and are checked here, before any arithmetic: ``Decimal('1e400000')``
is cheap to parse, but scaling it and turning it into an ``int`` for an
implied-decimal column holds the interpreter for seconds. So every number is
first checked by magnitude (``check_magnitude``: exponent and digits before the
point, O(1) on a Decimal) and only then handed to the codec. The codec then
turns the typed value into legacy form.

Every path that turns caller input into a stored or compared value goes
through ``parse_value`` or ``coerce_json`` with the field's bounds; a value out
of bounds is a ``ValueError`` naming the limit, which callers report as a 400
(query, path) or 422 (body) naming the parameter or field.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import FieldSpec

__all__ = (
    "INT64_MAX",
    "INT64_MIN",
    "MAX_NUMBER_CHARS",
    "MAX_TEXT_CHARS",
    "OutOfRange",
    "ValueBounds",
    "bounds_for",
    "check_magnitude",
    "check_text",
    "coerce_json",
    "coerce_unmapped",
    "parse_value",
    "shown",
)

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
"""The widest integer column any supported engine has (BIGINT; SQLite's INTEGER). A column
declared narrower (INT) still refuses a bigger value itself, and that refusal is a 400/422 too."""
DECIMAL_DIGITS = 38
"""Most digits a NUMERIC/DECIMAL column holds on SQL Server (PostgreSQL allows more; no legacy schema does)."""
FLOAT_EXPONENT = 308
"""A double (FLOAT, REAL columns) tops out near 1.8e308."""
MAX_EXPONENT = 1000
"""No column holds a number whose first digit is further than this from the point, either way."""
MAX_NUMBER_CHARS = 200
"""A number written with more characters than this is not a value any column holds."""
MAX_TEXT_CHARS = 4000
"""Longest text accepted as a filter value or key when the mapping declares no ``length``
(SQL Server binds longer text as NVARCHAR(MAX), which no legacy index can use)."""
_SHOWN_CHARS = 60

_BOOLEANS = {"true": True, "false": False}


class OutOfRange(ValueError):
    """A well-formed value its column could never hold (``1e400000``, a key past BIGINT)."""


@dataclass(frozen=True, slots=True)
class ValueBounds:
    """What a field's stored column can hold, from the mapping (or the widest any engine has)."""

    type: str
    """The API type (``FieldSpec.type``)."""
    scale: int | None = None
    """Implied decimals: the value is stored as the integer ``value * 10**scale``."""
    max_length: int | None = None
    """Longest text the column holds (``length``), else ``MAX_TEXT_CHARS``."""
    integer_stored: bool = False
    """The stored column is an integer column (an ``integer`` field, or implied decimals)."""

    @property
    def text_limit(self) -> int:
        return self.max_length if self.max_length is not None else MAX_TEXT_CHARS


def bounds_for(spec: FieldSpec) -> ValueBounds:
    """The bounds of a mapped field, from its type, ``scale`` and ``length``."""
    integer_stored = spec.scale is not None or (spec.type == "integer" and spec.transform != "zero_padded")
    length = spec.length if spec.type == "string" or spec.transform == "zero_padded" else None
    return ValueBounds(spec.type, spec.scale, length, integer_stored)


def shown(value: Any) -> str:
    """``value`` as a message shows it (numbers plain, text quoted), cut short: an error must not echo 100 KB back."""
    text = str(value) if isinstance(value, int | Decimal) and not isinstance(value, bool) else repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[: _SHOWN_CHARS - 15]}… ({len(text)} characters)"


def check_magnitude(value: Decimal | int, bounds: ValueBounds) -> None:
    """Refuse a number its column could never hold, using only O(1) facts about it.

    This is the one place a number is bounded against its field. It checks
    magnitude only (how far the first digit is from the point, and the range of
    an integer column); whether extra decimal places are refused or compared
    exactly is the codec's concern and is left to it.

    Raises:
        ValueError: naming the limit.
    """
    if isinstance(value, int):
        if bounds.scale is None:
            if not INT64_MIN <= value <= INT64_MAX:
                raise OutOfRange(_range_message(Decimal(value), 0))
            return
        value = Decimal(value)
    if not value.is_finite():
        raise OutOfRange(f"{value} is not a finite number")
    if value.is_zero():  # 0E+400000 is zero, but written with an exponent no column has
        if abs(value.as_tuple().exponent) > MAX_EXPONENT:  # type: ignore[arg-type]
            raise OutOfRange(f"{shown(value)} has an exponent out of range for any stored number")
        return
    exponent = value.adjusted()  # position of the first digit: 1e400000 -> 400000, 0.001 -> -3
    if abs(exponent) > MAX_EXPONENT or len(value.as_tuple().digits) > MAX_NUMBER_CHARS:
        raise OutOfRange(f"{shown(value)} is out of range for any stored number")
    if bounds.integer_stored:
        scale = bounds.scale or 0
        if exponent + scale > 19:  # more digits than a 64-bit integer: refuse before scaling
            raise OutOfRange(_range_message(value, scale))
        stored = int(value.scaleb(scale).to_integral_value())
        if not INT64_MIN <= stored <= INT64_MAX:
            raise OutOfRange(_range_message(value, scale))
    elif bounds.type == "number":
        if exponent >= FLOAT_EXPONENT:
            raise OutOfRange(f"{shown(value)} is out of range for a floating-point number")
    elif exponent >= DECIMAL_DIGITS:
        raise OutOfRange(f"{shown(value)} is out of range: at most {DECIMAL_DIGITS} digits before the decimal point")


def _range_message(value: Decimal, scale: int) -> str:
    if scale == 0:
        return f"{shown(value)} is out of range: whole numbers go from {INT64_MIN} to {INT64_MAX}"
    limit = Decimal(INT64_MAX).scaleb(-scale)
    return f"{shown(value)} is out of range: the column holds -{limit} to {limit}"


def check_text(text: str, bounds: ValueBounds | None = None) -> None:
    """Refuse text no column can store as given: NUL (PostgreSQL cuts the value at it), or absurd length.

    Raises:
        ValueError: naming the problem.
    """
    if "\x00" in text:
        raise ValueError("text must not contain the NUL character (\\u0000)")
    limit = bounds.text_limit if bounds is not None else MAX_TEXT_CHARS
    # A longer value than the column holds is left to the codec (it matches no row, or is refused
    # on write); only a value far past anything the column could hold is refused here.
    if len(text) > max(limit, MAX_TEXT_CHARS):
        raise OutOfRange(f"{shown(text)} is too long: at most {max(limit, MAX_TEXT_CHARS)} characters")


def parse_value(field_type: str, text: str, bounds: ValueBounds | None = None) -> Any:
    """Parse ``text`` as a value of the API type ``field_type``, within ``bounds``.

    Args:
        field_type: the API type.
        text: the value as the caller wrote it.
        bounds: the field's bounds (``bounds_for(spec)``); without, the widest any column has.

    Raises:
        ValueError: with a sentence naming the expected form or the limit.
    """
    bounds = bounds or ValueBounds(field_type, integer_stored=field_type == "integer")
    if field_type == "string":
        check_text(text, bounds)
        return text
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"expected {_EXPECTED[field_type]}, got {shown(text)}")
    try:
        match field_type:
            case "integer":
                whole = int(text)  # at most MAX_NUMBER_CHARS digits: cheap
                check_magnitude(whole, bounds)
                return whole
            case "decimal" | "number":
                number = Decimal(text.strip())
                if number.is_finite():
                    check_magnitude(number, bounds)
                    return number
            case "date":
                return dt.date.fromisoformat(text)
            case "time":
                return dt.time.fromisoformat(text)
            case "datetime":
                value = dt.datetime.fromisoformat(text)
                if value.tzinfo is not None:
                    return value
            case "boolean":
                return _BOOLEANS[text.lower()]
    except OutOfRange:
        raise
    except (ValueError, KeyError, InvalidOperation):
        pass
    raise ValueError(f"expected {_EXPECTED[field_type]}, got {shown(text)}")


_EXPECTED = {
    "string": "text",
    "integer": "a whole number",
    "decimal": "a decimal number such as 12.50",
    "number": "a number",
    "date": "an ISO 8601 date such as 2026-12-01",
    "time": "an ISO 8601 time such as 14:30:00",
    "datetime": "an ISO 8601 date-time with offset such as 2026-12-01T14:30:00Z",
    "boolean": "true or false",
}


def coerce_json(field_type: str, value: Any, bounds: ValueBounds | None = None, *, as_string: bool = False) -> Any:
    """A value decoded from a JSON body (numbers as Decimal) as the field's API type, within ``bounds``.

    ``as_string``: the field is a decimal served as text (``"12.50"``), so a string is what it takes.

    Raises:
        ValueError: with a sentence naming the expected JSON form or the limit.
    """
    bounds = bounds or ValueBounds(field_type, integer_stored=field_type == "integer")
    match field_type:
        case "string":
            if isinstance(value, str):
                check_text(value, bounds)
                return value
        case "integer":
            if isinstance(value, int) and not isinstance(value, bool):
                check_magnitude(value, bounds)
                return value
            if isinstance(value, Decimal) and value.is_finite():
                check_magnitude(value, bounds)  # before to_integral_value: 1e999999 must not be expanded
                if value == value.to_integral_value():
                    return int(value)
        case "decimal" if as_string:
            if isinstance(value, str):
                return parse_value("decimal", value, bounds)
            raise ValueError(f'expected a decimal string such as "12.50", got {type(value).__name__} {shown(value)}')
        case "decimal" | "number":
            if isinstance(value, int | Decimal) and not isinstance(value, bool):
                number = Decimal(value)
                check_magnitude(number, bounds)
                return number
        case "boolean":
            if isinstance(value, bool):
                return value
        case "date" | "time" | "datetime":
            if isinstance(value, str):
                return parse_value(field_type, value, bounds)
    raise ValueError(f"expected {_JSON_FORMS[field_type]}, got {type(value).__name__} {shown(value)}")


_JSON_FORMS = {
    "string": "a string",
    "integer": "a whole number",
    "decimal": "a number",
    "number": "a number",
    "boolean": "true or false",
    "date": 'an ISO 8601 date string such as "2026-12-01"',
    "time": 'an ISO 8601 time string such as "14:30:00"',
    "datetime": "an ISO 8601 date-time string with offset",
}


def coerce_unmapped(value: Any) -> Any:
    """A JSON body value bound to a procedure parameter that no field describes: a scalar within
    the widest bounds (a decimal number, text without NUL, true/false, or null).

    Raises:
        ValueError: for an object, an array, or a value out of those bounds.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        check_text(value)
        return value
    if isinstance(value, int | Decimal):
        check_magnitude(Decimal(value), ValueBounds("decimal"))
        return value
    raise ValueError(f"expected a string, number, true/false or null, got {type(value).__name__}")
