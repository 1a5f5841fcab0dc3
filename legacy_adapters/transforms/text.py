"""Text transforms: trimmed/padded CHAR columns, code maps and zero-padded numeric strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from .base import Inline, Undecodable, Unencodable

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ..mapping.model import FieldSpec

__all__ = ("CodeMap", "Strip", "Trim", "Unmapped", "ZeroPadded", "code_map", "raw_code", "strip", "trim", "zero_padded")


@dataclass(frozen=True, slots=True)
class Trim:
    """A CHAR column: the database right-pads with spaces, the API never sees them."""

    length: int | None = None
    """Width of the column; writes are padded to it and longer values refused."""
    order_preserving: bool = field(default=True, init=False)

    def to_api(self, raw: Any) -> str:
        if not isinstance(raw, str):
            raise Undecodable(f"expected a string, got {raw!r}")
        return raw.rstrip(" ")

    def api_inline(self) -> Inline:
        """``to_api`` for the row loop: a plain ``str`` takes the short path, anything else the full one."""
        return Inline('v.rstrip(" ") if type(v) is str else {slow}(v)', {"slow": self.to_api})

    def api_decoder(self) -> Callable[[Any], Any]:
        return self.api_inline().function()

    def to_legacy(self, value: Any) -> str:
        if not isinstance(value, str):
            raise Unencodable(f"expected a string, got {value!r}")
        # A CHAR column cannot tell 'A ' from 'A': storing it would read back changed.
        if value != value.rstrip(" "):
            raise Unencodable(f"{value!r} ends with spaces, which a padded column cannot keep")
        if self.length is None:
            return value
        if len(value) > self.length:
            raise Unencodable(f"{value!r} is longer than {self.length} characters")
        return value.ljust(self.length)


@dataclass(frozen=True, slots=True)
class Strip:
    """Hand-typed text (a VARCHAR e-mail, a name) read without the spaces around it.

    Unlike ``trim`` it also drops leading spaces, so stored order is not API order.
    """

    length: int | None = None
    order_preserving: bool = field(default=False, init=False)

    def to_api(self, raw: Any) -> str:
        if not isinstance(raw, str):
            raise Undecodable(f"expected a string, got {raw!r}")
        return raw.strip()

    def to_legacy(self, value: Any) -> str:
        if not isinstance(value, str):
            raise Unencodable(f"expected a string, got {value!r}")
        if value != value.strip():
            raise Unencodable(f"{value!r} starts or ends with spaces, which would be read back without them")
        if self.length is not None and len(value) > self.length:
            raise Unencodable(f"{value!r} is longer than {self.length} characters")
        return value


@dataclass(frozen=True, slots=True)
class ZeroPadded:
    """A number kept as a fixed-width digit string: ``'000123'`` <-> ``123``."""

    length: int
    order_preserving: bool = field(default=True, init=False)

    def to_api(self, raw: Any) -> int:
        # isascii: str.isdigit() also accepts '²' and other digits int() may reject or misread.
        if not (isinstance(raw, str) and raw.isascii() and raw.isdigit()):
            raise Undecodable(f"expected a digit string, got {raw!r}")
        return int(raw)

    def to_legacy(self, value: Any) -> str:
        if type(value) is Decimal and value.is_finite() and value == value.to_integral_value():
            value = int(value)  # a JSON body's number arrives as a Decimal
        if type(value) is not int or value < 0:
            raise Unencodable(f"expected a non-negative integer, got {value!r}")
        text = str(value)
        if len(text) > self.length:
            raise Unencodable(f"{value} has more than {self.length} digits")
        return text.zfill(self.length)


def _code_key(code: Any) -> Any:
    # CHAR codes come back padded ('R '), so codes are matched without trailing spaces.
    return code.rstrip(" ") if isinstance(code, str) else code


Unmapped: TypeAlias = Literal["null", "raw"] | tuple[Literal["default"], str]
"""What a stored code missing from a map is served as: null, the code itself, or ("default", value)."""


@dataclass(frozen=True, slots=True)
class CodeMap:
    """Legacy code <-> API name, e.g. ``'R'`` <-> ``'released'``. Built with ``code_map()``."""

    pairs: tuple[tuple[str | int, str], ...]
    """(stored code, API name) in mapping-file order."""
    unmapped: Unmapped = "null"
    """A stored code not in ``pairs``: ``null`` (Undecodable: served null and logged), ``raw``
    (served as the code, trimmed), or ``("default", name)``. Writes only ever store listed codes."""
    order_preserving: bool = field(default=False, init=False)
    _by_code: dict[Any, str] = field(init=False, repr=False, compare=False)
    _by_name: dict[str, str | int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_code: dict[Any, str] = {}
        by_name: dict[str, str | int] = {}
        for code, name in self.pairs:
            if _code_key(code) in by_code:
                raise ValueError(f"map has the code {code!r} twice")
            if name in by_name:
                first = by_name[name]
                raise ValueError(f"map has the API value {name!r} twice (codes {first!r} and {code!r})")
            by_code[_code_key(code)] = name
            by_name[name] = code
        object.__setattr__(self, "_by_code", by_code)
        object.__setattr__(self, "_by_name", by_name)

    @property
    def default(self) -> str | None:
        """The value unknown codes are served as under ``unmapped: {default: …}``."""
        return self.unmapped[1] if isinstance(self.unmapped, tuple) else None

    def _unknown(self, raw: Any) -> str:
        if self.unmapped == "raw":
            return raw_code(raw)
        if isinstance(self.unmapped, tuple):
            return self.unmapped[1]
        raise Undecodable(f"unknown code {raw!r}")

    def to_api(self, raw: Any) -> str:
        # bool is an int: a BIT column's True must not match a code 1 by accident.
        name = None if isinstance(raw, bool) else self._by_code.get(_code_key(raw))
        return self._unknown(raw) if name is None else name

    def api_inline(self) -> Inline:
        """``to_api`` for the row loop: one dict lookup for a known ``str`` code, the full path otherwise."""
        return Inline(
            'x if type(v) is str and (x := {by_code}.get(v.rstrip(" "))) is not None else {slow}(v)',
            {"by_code": self._by_code, "slow": self.to_api},
        )

    def api_decoder(self) -> Callable[[Any], Any]:
        return self.api_inline().function()

    def to_legacy(self, value: Any) -> str | int:
        code = self._by_name.get(value) if isinstance(value, str) else None
        if code is None:
            raise Unencodable(f"{value!r} is not one of: {', '.join(sorted(self._by_name))}")
        return code


def raw_code(raw: Any) -> str:
    """A stored code as ``unmapped: raw`` serves it: text without its CHAR padding, numbers as digits."""
    if isinstance(raw, str):
        return raw.rstrip(" ")
    if isinstance(raw, Decimal) and raw == raw.to_integral_value():
        return str(int(raw))
    return str(raw)


def trim(spec: FieldSpec) -> Trim:
    """Build ``trim`` from a field: pads to ``spec.length`` when it is set."""
    if spec.length is not None and spec.length < 1:
        raise ValueError("'length' must be at least 1")
    return Trim(spec.length)


def strip(spec: FieldSpec) -> Strip:
    """Build ``strip`` from a field: ``spec.length`` bounds writes when set."""
    return Strip(spec.length)


def zero_padded(spec: FieldSpec) -> ZeroPadded:
    """Build ``zero_padded`` from a field; ``spec.length`` is required."""
    if spec.length is None:
        raise ValueError("transform 'zero_padded' needs 'length'")
    if spec.length < 1:
        raise ValueError("'length' must be at least 1")
    return ZeroPadded(spec.length)


def code_map(codes: Mapping[str | int, str], unmapped: Unmapped = "null") -> CodeMap:
    """Build a code map from a field's ``map`` and ``unmapped``.

    Raises:
        ValueError: two codes share an API name (a write could not choose one), or a code repeats.
    """
    return CodeMap(tuple(codes.items()), unmapped)
