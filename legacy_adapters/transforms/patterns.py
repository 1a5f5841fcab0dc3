"""The date and time pattern language: ``%C%y%m%d``, ``%Y%j``, ``%H%M``, ``%m/%d/%Y``.

A pattern lists fixed-width digit fields in stored order (strftime letters, plus ``%C``,
IBM's one-digit century: 0 = 19xx, 1 = 20xx). A pattern made of fields only is stored as
a number, whose leading zeros the database drops (CYYMMDD ``0981231`` is the integer
``981231``); a pattern with any other character (``/``, ``-``) is stored as text.

Order is decided from the pattern itself: the stored values sort like the dates or
times they hold exactly when the fields run from most to least significant and no year
wraps at a pivot. That is what lets ``due[gte]=…`` and ``sort=due`` run in SQL.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .base import Undecodable, Unencodable

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "DATE_PATTERNS",
    "DEFAULT_PIVOT_YEAR",
    "TIME_PATTERNS",
    "DatePattern",
    "PatternField",
    "TimePattern",
    "as_whole_number",
    "parse_pattern",
)

DEFAULT_PIVOT_YEAR = 1940
"""Two-digit years 40-99 are 19xx, 00-39 are 20xx unless a field says ``pivot_year``."""

DATE_PATTERNS = {
    "yyyymmdd": "%Y%m%d",
    "cyymmdd": "%C%y%m%d",
    "yymmdd": "%y%m%d",
    "yyyyddd": "%Y%j",
    "cyyddd": "%C%y%j",
    "yyddd": "%y%j",
    "mmddyy": "%m%d%y",
    "mmddyyyy": "%m%d%Y",
    "ddmmyyyy": "%d%m%Y",
    "mm/dd/yyyy": "%m/%d/%Y",
}
"""Named date codecs and the pattern each one is."""

TIME_PATTERNS = {
    "hhmmss": "%H%M%S",
    "hhmm": "%H%M",
    "hhmmssth": "%H%M%S%2f",
}
"""Named time codecs that are patterns (``seconds`` since midnight is not one)."""

# letter -> (digits, significance rank); lower rank is more significant.
_DATE_FIELDS = {"C": (1, 0), "Y": (4, 1), "y": (2, 1), "m": (2, 2), "j": (3, 2), "d": (2, 3)}
_TIME_FIELDS = {"H": (2, 0), "M": (2, 1), "S": (2, 2), "f": (6, 3)}
_TOKEN = re.compile(r"%(?:([1-6])?(f)|([A-Za-z%]))|([^%]+)|(%)")


@dataclass(frozen=True, slots=True)
class PatternField:
    letter: str
    width: int


def parse_pattern(pattern: str, *, time: bool) -> tuple[tuple[PatternField | str, ...], bool]:
    """Split a pattern into fields and literal text, and say whether it keeps order.

    Raises:
        ValueError: an unknown letter, a repeated field, or fields that do not make a whole date/time.
    """
    letters = _TIME_FIELDS if time else _DATE_FIELDS
    kind = "time" if time else "date"
    parts: list[PatternField | str] = []
    for match in _TOKEN.finditer(pattern):
        digits, fraction, letter, literal, dangling = match.groups()
        if dangling:
            raise ValueError(f"pattern {pattern!r} ends with a lone '%'")
        if literal is not None or letter == "%":
            parts.append(literal if literal is not None else "%")
            continue
        letter = fraction or letter
        if letter not in letters:
            known = " ".join(f"%{name}" for name in letters)
            raise ValueError(f"pattern {pattern!r}: %{letter} is not a {kind} field (use {known})")
        if any(isinstance(p, PatternField) and p.letter == letter for p in parts):
            raise ValueError(f"pattern {pattern!r} has %{letter} twice")
        width = int(digits) if digits else letters[letter][0]
        parts.append(PatternField(letter, width))
    present = {p.letter for p in parts if isinstance(p, PatternField)}
    if time:
        needed_ok = "H" in present and ("S" in present or "f" not in present) and ("M" in present or "S" not in present)
        if not needed_ok:
            raise ValueError(f"pattern {pattern!r} needs %H, and %M before %S, %S before %f")
    else:
        has_year = "Y" in present or "y" in present
        has_day = {"m", "d"} <= present or "j" in present
        if not has_year or not has_day or ("j" in present and present & {"m", "d"}):
            raise ValueError(f"pattern {pattern!r} needs a year (%Y or %y) and either %m and %d, or %j")
        if "C" in present and "y" not in present:
            raise ValueError(f"pattern {pattern!r}: the century digit %C goes with a two-digit year %y")
        if "Y" in present and "y" in present:
            raise ValueError(f"pattern {pattern!r} has both %Y and %y")
    ranks = [letters[p.letter][1] for p in parts if isinstance(p, PatternField)]
    # A bare two-digit year wraps at its pivot (99 is before 00), so it never keeps order.
    pivots = not time and "y" in present and "C" not in present
    ordered = ranks == sorted(ranks) and len(set(ranks)) == len(ranks) and not pivots
    return tuple(parts), ordered


def as_whole_number(raw: Any) -> int:
    """A number as stored: an int, an integral Decimal (NUMERIC(8,0) through pyodbc), a whole float
    (the same column through sqliteodbc), or a digit string (a CHAR column)."""
    kind = type(raw)
    if kind is int:
        if raw >= 0:
            return raw  # type: ignore[no-any-return]
    elif kind is Decimal:
        if raw.is_finite() and raw >= 0 and raw == raw.to_integral_value():
            return int(raw)
    elif kind is float:
        # sqliteodbc reads NUMERIC(8,0) as a float; whole floats below 2**53 are exact.
        if raw.is_integer() and 0 <= raw < 2**53:
            return int(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        if text.isascii() and text.isdigit():
            return int(text)
    raise Undecodable(f"expected a non-negative whole number, got {raw!r}")


class _Pattern:
    """What date and time patterns share: splitting a stored value into its digit fields."""

    __slots__ = ()
    parts: tuple[PatternField | str, ...]
    numeric: bool
    label: str

    def _width(self) -> int:
        return sum(p.width for p in self.parts if isinstance(p, PatternField))

    def _fields(self, raw: Any) -> dict[str, int]:
        """Stored value -> {letter: number}, or ``Undecodable``."""
        if self.numeric:
            number = as_whole_number(raw)
            width = self._width()
            if number >= 10**width:
                raise Undecodable(f"{raw!r} has more than {width} digits for {self.label}")
            return self._split(number)
        else:
            if not isinstance(raw, str):
                raise Undecodable(f"expected text such as {self.label}, got {raw!r}")
            text = raw.rstrip(" ")
        values: dict[str, int] = {}
        at = 0
        for part in self.parts:
            if isinstance(part, str):
                if text[at : at + len(part)] != part:
                    raise Undecodable(f"{raw!r} is not a {self.label} value")
                at += len(part)
            else:
                digits = text[at : at + part.width]
                if len(digits) != part.width or not (digits.isascii() and digits.isdigit()):
                    raise Undecodable(f"{raw!r} is not a {self.label} value")
                values[part.letter] = int(digits)
                at += part.width
        if at != len(text):
            raise Undecodable(f"{raw!r} is not a {self.label} value")
        return values

    def _split(self, number: int) -> dict[str, int]:
        """A numeric pattern's fields by arithmetic: the last field is the lowest digits."""
        values: dict[str, int] = {}
        for part in reversed(self.parts):
            assert isinstance(part, PatternField)
            number, values[part.letter] = divmod(number, 10**part.width)
        return values

    def _store(self, values: dict[str, int]) -> Any:
        text = "".join(
            part if isinstance(part, str) else str(values[part.letter]).zfill(part.width) for part in self.parts
        )
        return int(text) if self.numeric else text


@dataclass(frozen=True, slots=True)
class DatePattern(_Pattern):
    """A date stored as the fields of a pattern: ``%C%y%m%d`` reads ``1261201`` as 2026-12-01."""

    pattern: str
    label: str
    """How error messages name the encoding (``CYYMMDD`` or the pattern)."""
    pivot_year: int = DEFAULT_PIVOT_YEAR
    parts: tuple[PatternField | str, ...] = field(init=False, repr=False)
    numeric: bool = field(init=False, repr=False)
    order_preserving: bool = field(init=False)

    def __post_init__(self) -> None:
        parts, ordered = parse_pattern(self.pattern, time=False)
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "numeric", all(isinstance(p, PatternField) for p in parts))
        object.__setattr__(self, "order_preserving", ordered)

    def to_api(self, raw: Any) -> dt.date:
        try:
            return self._date(self._fields(raw))
        except ValueError as exc:
            if isinstance(exc, Undecodable):
                raise
            raise Undecodable(f"{raw!r} is not a {self.label} date: {exc}") from None

    def _date(self, values: dict[str, int]) -> dt.date:
        """The date the fields name; ``ValueError`` when there is none (Feb 30, day 366 of 2023)."""
        if "Y" in values:
            year = values["Y"]
        elif "C" in values:
            year = 1900 + values["C"] * 100 + values["y"]
        else:
            pivot = self.pivot_year
            year = pivot // 100 * 100 + values["y"]
            if values["y"] < pivot % 100:
                year += 100
        if "j" in values:
            day_of_year = values["j"]
            first = dt.date(year, 1, 1)
            if not 1 <= day_of_year <= (366 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 365):
                raise ValueError(f"{year} has no day {day_of_year}")
            return first + dt.timedelta(days=day_of_year - 1)
        return dt.date(year, values["m"], values["d"])

    def api_decoder(self) -> Callable[[Any], Any]:
        """``to_api`` for the row loop: a plain int in YYYYMMDD or CYYMMDD layout goes straight to ``date``."""
        slow, date = self.to_api, dt.date
        if self.pattern == "%Y%m%d":

            def decode_ymd(raw: Any) -> Any:
                if type(raw) is int and 0 <= raw < 100_000_000:
                    try:
                        return date(raw // 10000, raw // 100 % 100, raw % 100)
                    except ValueError:
                        pass  # the full path raises Undecodable with its message
                return slow(raw)

            return decode_ymd
        if self.pattern == "%C%y%m%d":

            def decode_cymd(raw: Any) -> Any:
                if type(raw) is int and 0 <= raw < 10_000_000:
                    try:
                        return date(1900 + raw // 10000, raw // 100 % 100, raw % 100)
                    except ValueError:
                        pass
                return slow(raw)

            return decode_cymd
        if not self.numeric:
            return slow
        limit, split, build = 10 ** self._width(), self._split, self._date

        def decode(raw: Any) -> Any:
            if type(raw) is int and 0 <= raw < limit:
                try:
                    return build(split(raw))
                except ValueError:
                    pass
            return slow(raw)

        return decode

    def to_legacy(self, value: Any) -> Any:
        # datetime is a date subclass; storing one as a date would drop its time silently.
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise Unencodable(f"expected a date, got {value!r}")
        letters = {p.letter for p in self.parts if isinstance(p, PatternField)}
        year = value.year
        values = {"m": value.month, "d": value.day, "j": value.timetuple().tm_yday, "Y": year}
        if "C" in letters:
            century = (year - 1900) // 100
            if not 0 <= century <= 9:
                raise Unencodable(f"{value} is outside 1900-2899, which a century digit can hold")
            values["C"], values["y"] = century, year % 100
        elif "y" in letters:
            if not self.pivot_year <= year < self.pivot_year + 100:
                raise Unencodable(
                    f"{value} is outside {self.pivot_year}-{self.pivot_year + 99}, which a two-digit year can hold"
                )
            values["y"] = year % 100
        return self._store(values)


@dataclass(frozen=True, slots=True)
class TimePattern(_Pattern):
    """A time of day stored as the fields of a pattern: ``%H%M`` reads ``1430`` as 14:30."""

    pattern: str
    label: str
    parts: tuple[PatternField | str, ...] = field(init=False, repr=False)
    numeric: bool = field(init=False, repr=False)
    order_preserving: bool = field(init=False)
    _fraction: int = field(init=False, repr=False)
    """Digits of the fraction of a second (0 without %f)."""

    def __post_init__(self) -> None:
        parts, ordered = parse_pattern(self.pattern, time=True)
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "numeric", all(isinstance(p, PatternField) for p in parts))
        object.__setattr__(self, "order_preserving", ordered)
        fraction = next((p.width for p in parts if isinstance(p, PatternField) and p.letter == "f"), 0)
        object.__setattr__(self, "_fraction", fraction)

    def to_api(self, raw: Any) -> dt.time:
        values = self._fields(raw)
        micro = values.get("f", 0) * 10 ** (6 - self._fraction)
        try:
            return dt.time(values["H"], values.get("M", 0), values.get("S", 0), micro)
        except ValueError as exc:
            raise Undecodable(f"{raw!r} is not a {self.label} time: {exc}") from None

    def api_decoder(self) -> Callable[[Any], Any]:
        """``to_api`` for the row loop: a plain int of a numeric ``%H%M[%S]`` pattern by arithmetic."""
        slow, time = self.to_api, dt.time
        if self.pattern == "%H%M%S":

            def decode(raw: Any) -> Any:
                if type(raw) is int and 0 <= raw < 1_000_000:
                    try:
                        return time(raw // 10000, raw // 100 % 100, raw % 100)
                    except ValueError:
                        pass  # the full path raises Undecodable with its message
                return slow(raw)

            return decode
        if self.pattern == "%H%M":

            def decode(raw: Any) -> Any:
                if type(raw) is int and 0 <= raw < 10_000:
                    try:
                        return time(raw // 100, raw % 100)
                    except ValueError:
                        pass
                return slow(raw)

            return decode
        return slow

    def to_legacy(self, value: Any) -> Any:
        if not isinstance(value, dt.time) or value.tzinfo is not None:
            raise Unencodable(f"expected a time without a zone, got {value!r}")
        letters = {p.letter for p in self.parts if isinstance(p, PatternField)}
        step = 10 ** (6 - self._fraction)
        lost = (
            ("M" not in letters and value.minute)
            or ("S" not in letters and value.second)
            or value.microsecond % step
            or (not self._fraction and value.microsecond)
        )
        if lost:
            raise Unencodable(f"{value} is more precise than {self.label} can keep")
        return self._store({"H": value.hour, "M": value.minute, "S": value.second, "f": value.microsecond // step})
