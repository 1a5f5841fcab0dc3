"""Date and time codecs by name, seconds since midnight, and date+time pairs with a time zone.

A field names a date codec (``date: cyymmdd``), a time codec (``time: hhmm``), or both with
two columns and a zone (``type: datetime``). Most codecs are patterns (``patterns.py``);
``seconds`` counts seconds since midnight. The old ``transform:`` names stay as aliases:
``yyyymmdd``, ``cyymmdd``, ``julian`` (= ``cyyddd``), ``mm/dd/yyyy``, ``hhmmss`` and
``date_time`` (= ``yyyymmdd`` + ``hhmmss``). An impossible stored value (``20230231``,
``2460``) is ``Undecodable`` rather than coerced to a nearby date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .base import Undecodable, Unencodable
from .patterns import DATE_PATTERNS, DEFAULT_PIVOT_YEAR, TIME_PATTERNS, DatePattern, TimePattern, as_whole_number

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..mapping.model import FieldSpec

__all__ = (
    "DATE_CODECS",
    "PATTERN_PREFIX",
    "TIME_CODECS",
    "DateTimePair",
    "SecondsOfDay",
    "date_codec",
    "date_time",
    "time_codec",
    "timestamp",
    "zone",
)

PATTERN_PREFIX = "pattern:"
"""``date: "pattern:%C%y%m%d"`` spells an encoding that has no name."""
DATE_CODECS = tuple(DATE_PATTERNS)
TIME_CODECS = (*TIME_PATTERNS, "seconds")


class _Codec(Protocol):
    @property
    def order_preserving(self) -> bool: ...  # read-only: frozen dataclasses satisfy it

    def to_api(self, raw: Any) -> Any: ...

    def to_legacy(self, value: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class SecondsOfDay:
    """Seconds since midnight: ``52205`` <-> 14:30:05."""

    order_preserving: bool = field(default=True, init=False)

    def to_api(self, raw: Any) -> dt.time:
        number = as_whole_number(raw)
        if number >= 86_400:
            raise Undecodable(f"{raw!r} is not a number of seconds within a day")
        return dt.time(number // 3600, number // 60 % 60, number % 60)

    def to_legacy(self, value: Any) -> int:
        if not isinstance(value, dt.time) or value.tzinfo is not None:
            raise Unencodable(f"expected a time without a zone, got {value!r}")
        if value.microsecond:
            raise Unencodable(f"{value} has fractions of a second, which seconds since midnight cannot keep")
        return value.hour * 3600 + value.minute * 60 + value.second


def _label(name: str) -> str:
    return name.upper() if not name.startswith(PATTERN_PREFIX) else name[len(PATTERN_PREFIX) :]


def date_codec(name: str, pivot_year: int | None = None) -> DatePattern:
    """The date codec a mapping names: one of ``DATE_CODECS`` or ``pattern:<pattern>``.

    Raises:
        ValueError: an unknown name, a bad pattern, or a pivot year the pattern has no use for.
    """
    if name.startswith(PATTERN_PREFIX):
        pattern = name[len(PATTERN_PREFIX) :]
    elif name in DATE_PATTERNS:
        pattern = DATE_PATTERNS[name]
    else:
        raise ValueError(f"unknown date codec {name!r} (known: {', '.join(DATE_CODECS)}, or 'pattern:%Y%m%d' style)")
    codec = DatePattern(pattern, _label(name), pivot_year if pivot_year is not None else DEFAULT_PIVOT_YEAR)
    bare_year = any(getattr(p, "letter", "") == "y" for p in codec.parts) and "%C" not in pattern
    if pivot_year is not None and not bare_year:
        raise ValueError(f"'pivot_year' applies to two-digit years without a century digit, not to {name!r}")
    if pivot_year is not None and not 1900 <= pivot_year <= 2800:
        raise ValueError("'pivot_year' must be between 1900 and 2800")
    return codec


def time_codec(name: str) -> TimePattern | SecondsOfDay:
    """The time codec a mapping names: one of ``TIME_CODECS`` or ``pattern:<pattern>``.

    Raises:
        ValueError: an unknown name or a bad pattern.
    """
    if name == "seconds":
        return SecondsOfDay()
    if name.startswith(PATTERN_PREFIX):
        return TimePattern(name[len(PATTERN_PREFIX) :], _label(name))
    if name in TIME_PATTERNS:
        return TimePattern(TIME_PATTERNS[name], _label(name))
    raise ValueError(f"unknown time codec {name!r} (known: {', '.join(TIME_CODECS)}, or 'pattern:%H%M' style)")


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone local times were written in.

    Raises:
        ValueError: the name is not a known IANA zone.
    """
    if name is None:
        raise ValueError("a date and time pair needs 'timezone'")
    try:
        return ZoneInfo(name)
    # OSError: some Python versions raise IsADirectoryError for a region name like 'Europe'.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True, slots=True)
class DateTimePair:
    """A date column and a time column holding local time in ``zone`` <-> an aware datetime.

    Local times are read with ``fold=0``: in the hour repeated when clocks go back, the earlier
    instant is meant, and a time skipped when clocks go forward is read with the offset in force
    before the change. Writing an instant from the second pass of a repeated hour stores the same
    columns as the first pass; the legacy layout cannot tell them apart. For the same reason the
    pair's order follows instant order everywhere except inside that repeated hour.
    """

    date: _Codec
    time: _Codec
    zone: ZoneInfo
    order_preserving: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "order_preserving", self.date.order_preserving and self.time.order_preserving)

    def to_api(self, raw: Any) -> dt.datetime:
        if not isinstance(raw, tuple | list) or len(raw) != 2:
            raise Undecodable(f"expected a (date, time) pair, got {raw!r}")
        return dt.datetime.combine(self.date.to_api(raw[0]), self.time.to_api(raw[1]), tzinfo=self.zone)

    def api_decoder(self) -> Callable[[Any], Any]:
        """``to_api`` for the row loop: each part through its own fast decoder."""
        day = getattr(self.date, "api_decoder", lambda: self.date.to_api)()
        time = getattr(self.time, "api_decoder", lambda: self.time.to_api)()
        zone, combine, slow = self.zone, dt.datetime.combine, self.to_api
        if getattr(self.date, "pattern", None) == "%Y%m%d" and getattr(self.time, "pattern", None) == "%H%M%S":
            # The commonest legacy layout (date_time): one datetime made from the two ints, not a
            # date, a time and their combination (a third of a 100-row page's decoding).
            stamp = dt.datetime

            def decode_ymd_hms(raw: Any) -> Any:
                if type(raw) is tuple and len(raw) == 2:
                    d, t = raw
                    if type(d) is int and type(t) is int and 0 <= d < 100_000_000 and 0 <= t < 1_000_000:
                        try:
                            # tzinfo by position: the keyword costs as much as the rest of the call
                            return stamp(d // 10000, d // 100 % 100, d % 100, t // 10000, t // 100 % 100, t % 100, 0,
                                         zone)  # fmt: skip
                        except ValueError:
                            pass  # the full path raises Undecodable with its message
                return slow(raw)

            return decode_ymd_hms

        def decode(raw: Any) -> Any:
            if type(raw) is tuple and len(raw) == 2:
                return combine(day(raw[0]), time(raw[1]), zone)
            return slow(raw)

        return decode

    def to_legacy(self, value: Any) -> tuple[Any, Any]:
        if not isinstance(value, dt.datetime) or value.utcoffset() is None:
            raise Unencodable(f"expected a datetime with a time zone, got {value!r}")
        try:
            local = value.astimezone(self.zone)
        except OverflowError:  # 0001-01-01T00:00Z is before year 1 in a zone east of UTC
            raise Unencodable(f"{value.isoformat()} is outside the dates {self.zone.key} local time can hold") from None
        return self.date.to_legacy(local.date()), self.time.to_legacy(local.time())


def timestamp(spec: FieldSpec) -> DateTimePair:
    """The pair a ``type: datetime`` field with ``date:``, ``time:``, ``time_column`` and ``timezone`` names.

    Raises:
        ValueError: an option is missing, a codec is unknown or the zone is not an IANA name.
    """
    missing = [name for name in ("date", "time", "time_column", "timezone") if getattr(spec, name) is None]
    if missing:
        raise ValueError(f"a datetime from two columns needs {' and '.join(repr(m) for m in missing)}")
    assert spec.date is not None and spec.time is not None
    return DateTimePair(date_codec(spec.date, spec.pivot_year), time_codec(spec.time), zone(spec.timezone))


def date_time(spec: FieldSpec) -> DateTimePair:
    """Build ``transform: date_time`` (YYYYMMDD + HHMMSS); ``time_column`` and ``timezone`` are required.

    Raises:
        ValueError: an option is missing or the zone is not a known IANA name.
    """
    if spec.time_column is None or spec.timezone is None:
        missing = [name for name in ("time_column", "timezone") if getattr(spec, name) is None]
        raise ValueError(f"transform 'date_time' needs {' and '.join(repr(m) for m in missing)}")
    return DateTimePair(date_codec("yyyymmdd"), time_codec("hhmmss"), zone(spec.timezone))
