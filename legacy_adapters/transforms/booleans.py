"""Boolean transforms: a pair of stored codes, one for true and one for false.

``yes_no`` ('Y'/'N'), ``one_zero`` (1/0), ``active_inactive`` ('A'/'I') and ``boolean`` with the
codes from ``bool_values``. Any other stored code is ``Undecodable``: a stray 'X' is not false.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .base import NUMBER_TEST, Inline, Undecodable, Unencodable

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..mapping.model import FieldSpec

__all__ = ("BoolCodes", "active_inactive", "boolean", "one_zero", "yes_no")


def _matches(raw: Any, code: str | int | float) -> bool:
    if isinstance(code, str):
        # Only strings match a letter code, compared without CHAR padding: a stored 1 is no 'Y'.
        return isinstance(raw, str) and raw.rstrip(" ") == code.rstrip(" ")
    if isinstance(raw, str):
        # A 1/0 flag kept in a CHAR(1) column reads back as '1'/'0'.
        return raw.strip() == str(code)
    # A BIT column arrives as a bool, which compares equal to 1/0 as it should; a NUMERIC(1,0)
    # column arrives as a Decimal from pyodbc.
    return isinstance(raw, int | float | Decimal) and raw == code


@dataclass(frozen=True, slots=True)
class BoolCodes:
    true_code: str | int | float
    false_code: str | int | float
    order_preserving: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if _matches(self.true_code, self.false_code):
            raise ValueError(f"true and false are both stored as {self.true_code!r}")

    def to_api(self, raw: Any) -> bool:
        if _matches(raw, self.true_code):
            return True
        if _matches(raw, self.false_code):
            return False
        raise Undecodable(f"{raw!r} is neither {self.true_code!r} (true) nor {self.false_code!r} (false)")

    def api_inline(self) -> Inline:
        """``to_api`` for the row loop: dict lookups with ``_matches``'s rules, the full path for the rest."""
        letters: dict[str, bool] = {}  # letter codes, compared without CHAR padding
        digits: dict[str, bool] = {}  # numeric codes kept as text in a CHAR column
        numbers: dict[int | float, bool] = {}
        for code, value in ((self.false_code, False), (self.true_code, True)):
            if isinstance(code, str):
                letters[code.rstrip(" ")] = value
            else:
                digits[str(code)] = value
                numbers[code] = value
        # Equal numbers hash alike: Decimal(1) finds 1.
        text = '{letters}.get(v.rstrip(" "))'
        if digits:
            text = f"(x if (x := {text}) is not None else {{digits}}.get(v.strip()))"
        found = f"({text} if type(v) is str else {{numbers}}.get(v) if {NUMBER_TEST} else None)"
        return Inline(
            f"x if (x := {found}) is not None else {{slow}}(v)",
            {"letters": letters, "digits": digits, "numbers": numbers, "Decimal": Decimal, "slow": self.to_api},
        )

    def api_decoder(self) -> Callable[[Any], Any]:
        return self.api_inline().function()

    def to_legacy(self, value: Any) -> str | int | float:
        if not isinstance(value, bool):
            raise Unencodable(f"expected true or false, got {value!r}")
        return self.true_code if value else self.false_code


def yes_no(spec: FieldSpec) -> BoolCodes:
    """'Y'/'N'."""
    return BoolCodes("Y", "N")


def one_zero(spec: FieldSpec) -> BoolCodes:
    """1/0 integers; the strings '1'/'0' decode too."""
    return BoolCodes(1, 0)


def active_inactive(spec: FieldSpec) -> BoolCodes:
    """'A'/'I'."""
    return BoolCodes("A", "I")


def boolean(spec: FieldSpec) -> BoolCodes:
    """Custom codes from ``spec.bool_values`` = (true code, false code)."""
    if spec.bool_values is None:
        raise ValueError("transform 'boolean' needs 'bool_values'")
    return BoolCodes(*spec.bool_values)
