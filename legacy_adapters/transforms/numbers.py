"""Numeric transforms: implied decimals, and the null sentinels legacy schemas used instead of NULL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from .base import NUMBER_TEST, Inline, Undecodable, Unencodable

__all__ = ("DecimalText", "DecimalValue", "ImpliedDecimal", "NullIf", "WholeNumber", "on_grid", "whole")


def whole(raw: Any) -> int | None:
    """``raw`` as an int when it is a whole number of any driver's type, else None.

    pyodbc gives NUMERIC(8,0) as ``Decimal('500000')``, sqliteodbc as ``500000.0``; floats are
    whole and exact below 2**53 only.
    """
    kind = type(raw)
    if kind is int:
        return raw  # type: ignore[no-any-return]
    if kind is Decimal and raw.is_finite() and raw == raw.to_integral_value():
        return int(raw)
    if kind is float and raw.is_integer() and abs(raw) < 2**53:
        return int(raw)
    return None


@dataclass(frozen=True, slots=True)
class WholeNumber:
    """A ``type: integer`` column served as a JSON integer whatever type the driver returns."""

    order_preserving: bool = field(default=True, init=False)

    def to_api(self, raw: Any) -> int:
        number = whole(raw)
        if number is None:
            if isinstance(raw, str) and raw.strip().lstrip("-").isdigit() and raw.strip().isascii():
                return int(raw)
            raise Undecodable(f"expected a whole number, got {raw!r}")
        return number

    def api_inline(self) -> Inline:
        """``to_api`` for the row loop: a plain ``int`` is returned as it is."""
        return Inline("v if type(v) is int else {slow}(v)", {"slow": self.to_api})

    def api_decoder(self) -> Callable[[Any], Any]:
        return self.api_inline().function()

    def to_legacy(self, value: Any) -> int:
        number = None if isinstance(value, bool) else whole(value)
        if number is None:
            raise Unencodable(f"expected a whole number, got {value!r}")
        return number


@dataclass(frozen=True, slots=True)
class ImpliedDecimal:
    """An integer column with ``scale`` implied decimals: 1250 with scale 2 <-> ``Decimal('12.50')``."""

    scale: int
    order_preserving: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if self.scale < 0:
            raise ValueError("'scale' must not be negative")

    def to_api(self, raw: Any) -> Decimal:
        # A NUMERIC(9,0) column arrives as a Decimal from pyodbc (a float from sqliteodbc).
        number = None if isinstance(raw, bool) else whole(raw)
        if number is None:
            raise Undecodable(f"expected a whole number, got {raw!r}")
        return Decimal(number).scaleb(-self.scale)

    def api_inline(self) -> Inline:
        """``to_api`` for the row loop: a plain ``int`` skips the checks it needs no more."""
        return Inline(
            "{Decimal}(v).scaleb({exponent}) if type(v) is int else {slow}(v)",
            {"Decimal": Decimal, "exponent": -self.scale, "slow": self.to_api},
        )

    def api_decoder(self) -> Callable[[Any], Any]:
        return self.api_inline().function()

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


@dataclass(frozen=True, slots=True)
class DecimalValue:
    """A DECIMAL/NUMERIC column served as a JSON number with the column's scale on every backend.

    Drivers disagree: psqlODBC gives ``Decimal('22263.70')``, sqlite3 a float ``22263.7`` and
    sqliteodbc the text ``'22263.7'``. All become ``Decimal('22263.70')`` for ``places=2``.
    """

    places: int | None = None
    """The column's declared scale; without it values keep the places the driver gave."""
    order_preserving: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if self.places is not None and not 0 <= self.places <= 38:
            raise ValueError("'decimals' must be between 0 and 38")

    def _number(self, raw: Any, error: type[ValueError]) -> Decimal:
        if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal | str):
            raise error(f"expected a number, got {raw!r}")
        try:
            # repr(): a float's shortest form is the decimal that was stored, Decimal(0.1) is not.
            number = (
                Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw.strip() if isinstance(raw, str) else raw)
            )
        except ArithmeticError:
            raise error(f"{raw!r} is not a number") from None
        if not number.is_finite():
            raise error(f"{raw!r} is not a finite number")
        if self.places is None:
            return number
        try:
            fitted = number.quantize(Decimal(1).scaleb(-self.places))
        except ArithmeticError:  # more digits than the decimal context holds
            raise error(f"{raw!r} is too large") from None
        if fitted != number:
            raise error(f"{raw!r} has more than {self.places} decimals")
        return fitted

    def to_api(self, raw: Any) -> Decimal:
        return self._number(raw, Undecodable)

    def to_legacy(self, value: Any) -> Decimal:
        if isinstance(value, str):
            raise Unencodable(f"expected a number, got {value!r}")
        return self._number(value, Unencodable)


@dataclass(frozen=True, slots=True)
class DecimalText:
    """The last link of an ``as_string`` decimal: ``Decimal('12.50')`` is served as the text ``"12.50"``.

    Always positional notation (never ``1E+3``), with the places the link before it gave. Values
    from filters and bodies reach ``to_legacy`` already parsed as Decimals; text is read as one too.
    """

    order_preserving: bool = field(default=True, init=False)

    def to_api(self, raw: Any) -> str:
        if not isinstance(raw, Decimal):
            raise Undecodable(f"expected a decimal, got {raw!r}")
        return format(raw, "f")

    def to_legacy(self, value: Any) -> Decimal:
        if isinstance(value, Decimal):
            return value
        if isinstance(value, str):
            try:
                number = Decimal(value)
            except ArithmeticError:
                raise Unencodable(f"{value!r} is not a decimal number") from None
            if number.is_finite():
                return number
        raise Unencodable(f'expected a decimal string such as "12.50", got {value!r}')


def on_grid(value: Decimal, places: int, op: str) -> tuple[str, Decimal] | bool:
    """A comparison with a value finer than a field's decimals, restated on its grid of values.

    ``x > 1.234`` over values with 2 places is ``x >= 1.24``; ``x = 1.234`` holds for none
    (False), ``x != 1.234`` for every value (True). A value already on the grid is unchanged.

    Returns:
        (operator, value on the grid), or a bool when the answer does not depend on the row.
    """
    step = Decimal(1).scaleb(-places)
    if value == value.quantize(step, rounding=ROUND_FLOOR):
        return op, value
    if op in ("gt", "gte"):
        return "gte", value.quantize(step, rounding=ROUND_CEILING)
    if op in ("lt", "lte"):
        return "lte", value.quantize(step, rounding=ROUND_FLOOR)
    return op == "ne"


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
        return self.inline_test().function()

    def inline_test(self) -> Inline:
        """``tester`` as an expression for a generated row decoder (``Inline``)."""
        texts = frozenset(v.rstrip(" ") for v in self.values if isinstance(v, str))
        numbers = frozenset(v for v in self.values if not isinstance(v, str))
        return Inline(
            f'v is None or (v.rstrip(" ") in {{texts}} if type(v) is str else v in {{numbers}} if {NUMBER_TEST}'
            " else {slow}(v))",
            {"texts": texts, "numbers": numbers, "Decimal": Decimal, "slow": self.is_null},
        )

    @property
    def written_as(self) -> str | int | float:
        """The value a null API value is stored as."""
        return self.values[0]
