"""Numeric transforms: implied decimals, and the null sentinels legacy schemas used instead of NULL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .base import Undecodable, Unencodable

__all__ = ("ImpliedDecimal", "NullIf")


@dataclass(frozen=True, slots=True)
class ImpliedDecimal:
    """An integer column with ``scale`` implied decimals: 1250 with scale 2 <-> ``Decimal('12.50')``."""

    scale: int
    order_preserving: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if self.scale < 0:
            raise ValueError("'scale' must not be negative")

    def to_api(self, raw: Any) -> Decimal:
        # A NUMERIC(9,0) column arrives as a Decimal from pyodbc; only whole numbers are valid.
        if isinstance(raw, bool) or not isinstance(raw, int | Decimal) or raw != int(raw):
            raise Undecodable(f"expected a whole number, got {raw!r}")
        return Decimal(int(raw)).scaleb(-self.scale)

    def api_decoder(self) -> Callable[[Any], Any]:
        """``to_api`` for the row loop: a plain ``int`` skips the checks it needs no more."""
        exponent, slow = -self.scale, self.to_api

        def decode(raw: Any) -> Any:
            return Decimal(raw).scaleb(exponent) if type(raw) is int else slow(raw)

        return decode

    def to_legacy(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise Unencodable(f"expected a number, got {value!r}")
        # str(): a float's shortest repr is what the client wrote; Decimal(0.1) would not be.
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        if not number.is_finite():
            raise Unencodable(f"{value!r} is not a finite number")
        scaled = number.scaleb(self.scale)
        if scaled != scaled.to_integral_value():
            raise Unencodable(f"{value} has more than {self.scale} decimals")
        return int(scaled)


def _same(raw: Any, sentinel: Any) -> bool:
    if isinstance(raw, str) and isinstance(sentinel, str):
        # A blank CHAR date is stored padded: '        ' matches null_if: [''].
        return raw.rstrip(" ") == sentinel.rstrip(" ")
    # bool is an int: a BIT True must not be taken for a sentinel 1; '0' is not 0 either.
    numbers = (int, float, Decimal)
    return isinstance(raw, numbers) and isinstance(sentinel, numbers) and not isinstance(raw, bool) and raw == sentinel


@dataclass(frozen=True, slots=True)
class NullIf:
    """Stored values that mean "no value", e.g. ``0`` and ``99999999`` in a date column."""

    values: tuple[str | int | float, ...]
    """The sentinels; the first is what a null is written as."""

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("'null_if' must list at least one value")

    def is_null(self, raw: Any) -> bool:
        """Whether a stored value is SQL NULL or one of the sentinels."""
        return raw is None or any(_same(raw, sentinel) for sentinel in self.values)

    def tester(self) -> Callable[[Any], bool]:
        """``is_null`` for the row loop: set lookups for plain str/int/float/Decimal values.

        Equal numbers hash alike across int, float and Decimal, so ``in`` answers what
        ``_same`` does; bool, subclasses and other types take the full path.
        """
        texts = frozenset(v.rstrip(" ") for v in self.values if isinstance(v, str))
        numbers = frozenset(v for v in self.values if not isinstance(v, str))
        slow = self.is_null

        def test(raw: Any) -> bool:
            if raw is None:
                return True
            kind = type(raw)
            if kind is str:
                return raw.rstrip(" ") in texts
            if kind is int or kind is float or kind is Decimal:
                return raw in numbers
            return slow(raw)

        return test

    @property
    def written_as(self) -> str | int | float:
        """The value a null API value is stored as."""
        return self.values[0]
