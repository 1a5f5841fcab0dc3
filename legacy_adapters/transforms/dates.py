"""Date and time transforms: packed integers, CYY centuries, Julian days, US strings, date+time pairs.

Legacy systems stored dates as numbers (``20261201``, IBM ``1261201``, JD Edwards ``126335``) or
strings (``'12/01/2026'``), times as ``HHMMSS`` integers, and timestamps as a date column plus a
time column in the site's local time. Each class here decodes one such form; an impossible value
(``20230231``, ``246000``) is ``Undecodable`` rather than coerced to a nearby date.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .base import Undecodable, Unencodable

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..mapping.model import FieldSpec

__all__ = ("CenturyDate", "DateTimePair", "JulianDate", "PackedDate", "PackedTime", "SlashDate", "date_time")


def _as_int(raw: Any) -> int:
    """A packed number as stored: an int, or a digit string from a CHAR column."""
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        return int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    raise Undecodable(f"expected a non-negative number, got {raw!r}")


def _as_date(value: Any) -> dt.date:
    # datetime is a date subclass; storing one as a date would drop its time silently.
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise Unencodable(f"expected a date, got {value!r}")
    return value


def _century(value: dt.date) -> int:
    """The C of CYY: 0 for 19xx, 1 for 20xx, up to 9 for 28xx."""
    century = (value.year - 1900) // 100
    if not 0 <= century <= 9:
        raise Unencodable(f"{value} is outside 1900-2899, which a CYY year can hold")
    return century


@dataclass(frozen=True, slots=True)
class PackedDate:
    """``20261201`` <-> 2026-12-01; a digit string from a CHAR column decodes too, writes give an int."""

    order_preserving: bool = field(default=True, init=False)

    def to_api(self, raw: Any) -> dt.date:
        number = _as_int(raw)
        try:
            return dt.date(number // 10000, number // 100 % 100, number % 100)
        except ValueError as exc:
            raise Undecodable(f"{raw!r} is not a YYYYMMDD date: {exc}") from None

    def api_decoder(self) -> Callable[[Any], Any]:
        """``to_api`` for the row loop: a plain non-negative ``int`` goes straight to ``date``."""
        slow, date = self.to_api, dt.date

        def decode(raw: Any) -> Any:
            if type(raw) is int and raw >= 0:
                try:
                    return date(raw // 10000, raw // 100 % 100, raw % 100)
                except ValueError:
                    pass  # the full path raises Undecodable with its message
            return slow(raw)

        return decode

    def to_legacy(self, value: Any) -> int:
        day = _as_date(value)
        return day.year * 10000 + day.month * 100 + day.day


@dataclass(frozen=True, slots=True)
class CenturyDate:
    """IBM midrange dates: ``1261201`` is 2026-12-01, ``981231`` is 1998-12-31."""

    order_preserving: bool = field(default=True, init=False)

    def to_api(self, raw: Any) -> dt.date:
        number = _as_int(raw)
        if number >= 10_000_000:
            raise Undecodable(f"{raw!r} has more than 7 digits for CYYMMDD")
        try:
            return dt.date(1900 + number // 10000, number // 100 % 100, number % 100)
        except ValueError as exc:
            raise Undecodable(f"{raw!r} is not a CYYMMDD date: {exc}") from None

    def api_decoder(self) -> Callable[[Any], Any]:
        """``to_api`` for the row loop: a plain ``int`` of at most 7 digits goes straight to ``date``."""
        slow, date = self.to_api, dt.date

        def decode(raw: Any) -> Any:
            if type(raw) is int and 0 <= raw < 10_000_000:
                try:
                    return date(1900 + raw // 10000, raw // 100 % 100, raw % 100)
                except ValueError:
                    pass
            return slow(raw)

        return decode

    def to_legacy(self, value: Any) -> int:
        day = _as_date(value)
        return _century(day) * 1_000_000 + day.year % 100 * 10000 + day.month * 100 + day.day


@dataclass(frozen=True, slots=True)
class JulianDate:
    """JD Edwards CYYDDD: ``126335`` is day 335 of 2026 (2026-12-01), ``98001`` is 1998-01-01."""

    order_preserving: bool = field(default=True, init=False)

    def to_api(self, raw: Any) -> dt.date:
        number = _as_int(raw)
        year, day_of_year = 1900 + number // 1000, number % 1000
        if number >= 1_000_000 or not 1 <= day_of_year <= (366 if _is_leap(year) else 365):
            raise Undecodable(f"{raw!r} is not a CYYDDD date")
        return dt.date(year, 1, 1) + dt.timedelta(days=day_of_year - 1)

    def to_legacy(self, value: Any) -> int:
        day = _as_date(value)
        return _century(day) * 100_000 + day.year % 100 * 1000 + day.timetuple().tm_yday


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_MDY = re.compile(r"(\d\d)/(\d\d)/(\d{4})", re.ASCII)


@dataclass(frozen=True, slots=True)
class SlashDate:
    """``'12/01/2026'``. Not order-preserving: the stored strings sort by month first."""

    order_preserving: bool = field(default=False, init=False)

    def to_api(self, raw: Any) -> dt.date:
        match = _MDY.fullmatch(raw.rstrip(" ")) if isinstance(raw, str) else None
        if match is None:
            raise Undecodable(f"{raw!r} is not an MM/DD/YYYY date")
        month, day, year = map(int, match.groups())
        try:
            return dt.date(year, month, day)
        except ValueError as exc:
            raise Undecodable(f"{raw!r} is not an MM/DD/YYYY date: {exc}") from None

    def to_legacy(self, value: Any) -> str:
        day = _as_date(value)
        return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"


@dataclass(frozen=True, slots=True)
class PackedTime:
    """``143005`` <-> 14:30:05. Naive times only: the zone, if any, belongs to a ``date_time`` pair."""

    order_preserving: bool = field(default=True, init=False)

    def to_api(self, raw: Any) -> dt.time:
        number = _as_int(raw)
        try:
            return dt.time(number // 10000, number // 100 % 100, number % 100)
        except ValueError as exc:
            raise Undecodable(f"{raw!r} is not an HHMMSS time: {exc}") from None

    def to_legacy(self, value: Any) -> int:
        if not isinstance(value, dt.time) or value.tzinfo is not None:
            raise Unencodable(f"expected a time without a zone, got {value!r}")
        if value.microsecond:
            raise Unencodable(f"{value} has fractions of a second, which HHMMSS cannot keep")
        return value.hour * 10000 + value.minute * 100 + value.second


@dataclass(frozen=True, slots=True)
class DateTimePair:
    """A YYYYMMDD column and an HHMMSS column holding local time in ``zone`` <-> an aware datetime.

    Local times are read with ``fold=0``: in the hour repeated when clocks go back, the earlier
    instant is meant, and a time skipped when clocks go forward is read with the offset in force
    before the change. Writing an instant from the second pass of a repeated hour stores the same
    columns as the first pass; the legacy layout cannot tell them apart. For the same reason the
    pair's order follows instant order everywhere except inside that repeated hour.
    """

    zone: ZoneInfo
    order_preserving: bool = field(default=True, init=False)

    def to_api(self, raw: Any) -> dt.datetime:
        if not isinstance(raw, tuple | list) or len(raw) != 2:
            raise Undecodable(f"expected a (date, time) pair, got {raw!r}")
        day, time = PackedDate().to_api(raw[0]), PackedTime().to_api(raw[1])
        return dt.datetime.combine(day, time, tzinfo=self.zone)

    def api_decoder(self) -> Callable[[Any], Any]:
        """``to_api`` for the row loop: two plain non-negative ``int`` go straight to ``datetime``."""
        slow, zone, datetime = self.to_api, self.zone, dt.datetime

        def decode(raw: Any) -> Any:
            if type(raw) is tuple and len(raw) == 2:
                day, time = raw
                if type(day) is int and type(time) is int and day >= 0 and time >= 0:
                    try:
                        return datetime(
                            day // 10000, day // 100 % 100, day % 100,
                            time // 10000, time // 100 % 100, time % 100, tzinfo=zone,
                        )  # fmt: skip
                    except ValueError:
                        pass
            return slow(raw)

        return decode

    def to_legacy(self, value: Any) -> tuple[int, int]:
        if not isinstance(value, dt.datetime) or value.utcoffset() is None:
            raise Unencodable(f"expected a datetime with a time zone, got {value!r}")
        if value.microsecond:
            raise Unencodable(f"{value} has fractions of a second, which HHMMSS cannot keep")
        local = value.astimezone(self.zone)
        return PackedDate().to_legacy(local.date()), PackedTime().to_legacy(local.time())


def date_time(spec: FieldSpec) -> DateTimePair:
    """Build ``date_time`` from a field; ``spec.time_column`` and ``spec.timezone`` are required.

    Raises:
        ValueError: an option is missing or the zone is not a known IANA name.
    """
    if spec.time_column is None or spec.timezone is None:
        missing = [name for name in ("time_column", "timezone") if getattr(spec, name) is None]
        raise ValueError(f"transform 'date_time' needs {' and '.join(repr(m) for m in missing)}")
    try:
        return DateTimePair(ZoneInfo(spec.timezone))
    # OSError: some Python versions raise IsADirectoryError for a region name like 'Europe'.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {spec.timezone!r}") from None
