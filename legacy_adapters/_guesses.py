"""Guess a column's API type and transform from its SQL type and a sample of its values.

Used by ``introspect.py``. Every guess carries the reason, written into the
starter mapping as a YAML comment, because a guess a user cannot check is worse
than none. Value-based guesses look at every sampled value: one value that
does not fit (a date column holding ``12345``) means no guess, not a majority vote.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from legacy_adapters._naming import words

__all__ = ("FieldGuess", "guess_field")

Scalar = str | int | float

_DATE_SENTINELS: dict[str, frozenset[int]] = {
    "yyyymmdd": frozenset({0, 99999999}),
    "cyymmdd": frozenset({0, 9999999}),
    "julian": frozenset({0, 999999}),
}
"""Stored values that legacy programs wrote for "no date" / "open-ended" in each encoding."""
_BOOLEANS = (("yes_no", ("Y", "N")), ("one_zero", ("1", "0")), ("active_inactive", ("A", "I")))
_MDY = re.compile(r"^\d{2}/\d{2}/\d{4}$")
_CODE = re.compile(r"^[A-Z]$")
_MAX_CODES = 12
"""More distinct letters than this looks like data, not a status code."""
_MIN_VALUES_WITHOUT_HINT = 20
"""CYYMMDD/CYYDDD numbers are easy to hit by chance: without a date-like name, want this many values."""
_AMOUNT_WORDS = frozenset({"amount", "price", "cost", "quantity", "hours", "limit", "balance", "total", "hand"})


@dataclass
class FieldGuess:
    """What the introspector proposes for one column."""

    column: str
    type: str = "string"
    transform: str | None = None
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


def _yyyymmdd(v: int) -> tuple[bool, bool]:
    """(has the shape, is a real date) for a YYYYMMDD number."""
    return 18000101 <= v <= 21991231, _real(v // 10000, v // 100 % 100, v % 100)


def _cyymmdd(v: int) -> tuple[bool, bool]:
    # C counts centuries past 1900, at most 2 (2199); years before 1940 are more likely small numbers.
    return 400101 <= v <= 2991231, _real(1900 + v // 10000, v // 100 % 100, v % 100)


def _julian(v: int) -> tuple[bool, bool]:
    return 40001 <= v <= 299366, 1 <= v % 1000 <= (366 if _leap(1900 + v // 1000) else 365)


def _real(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _hhmmss(v: int) -> bool:
    return 0 <= v <= 235959 and v // 100 % 100 < 60 and v % 100 < 60


_DATE_SHAPES = (("yyyymmdd", _yyyymmdd, "YYYYMMDD"), ("cyymmdd", _cyymmdd, "CYYMMDD"), ("julian", _julian, "CYYDDD"))
_MAX_IMPOSSIBLE = 0.05
"""Dirty legacy data holds a few impossible dates (20230231); more than this share means it is no date."""


def _int_guess(guess: FieldGuess, values: list[Any], name_words: list[str]) -> None:
    numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    if len(numbers) != len(values) or not numbers:
        if any(isinstance(v, Decimal) for v in values):
            guess.why.append("NUMERIC values: the packed-date and flag transforms decode integers only")
        return
    distinct = set(numbers)
    date_named = "date" in name_words
    for transform, shape, label in _DATE_SHAPES:
        sentinels = _DATE_SENTINELS[transform]
        real = [v for v in distinct if v not in sentinels]
        checks = [shape(v) for v in real]
        impossible = sorted(v for v, (_, valid) in zip(real, checks, strict=True) if not valid)
        if not real or not all(fits for fits, _ in checks) or len(impossible) > _MAX_IMPOSSIBLE * len(real):
            continue
        if transform != "yyyymmdd" and not date_named and len(real) < _MIN_VALUES_WITHOUT_HINT:
            continue
        seen: list[Scalar] = sorted(distinct & sentinels)
        guess.type, guess.transform, guess.null_if = "date", transform, seen or None
        reason = f"the sampled values look like {label}"
        if seen:
            reason += f"; {' and '.join(map(str, seen))} read as null"
        guess.why.append(reason)
        if impossible:
            guess.why.append(
                f"{len(impossible)} sampled values are impossible dates (e.g. {impossible[0]}): served as null, logged"
            )
        return
    if "time" in name_words and all(_hhmmss(v) for v in distinct):
        guess.type, guess.transform = "time", "hhmmss"
        guess.why.append("named like a time and every sampled value is a valid HHMMSS")
        return
    if distinct == {0, 1}:
        guess.type, guess.transform = "boolean", "one_zero"
        guess.why.append("only 1 and 0 sampled: a flag")
        return
    if _AMOUNT_WORDS & set(name_words):
        guess.why.append("if this integer holds implied decimals (1250 = 12.50), set type: decimal and scale: 2")


def _text_guess(guess: FieldGuess, values: list[Any], length: int | None, is_char: bool) -> None:
    texts = [v.rstrip(" ") for v in values if isinstance(v, str)]
    distinct = set(texts)
    if texts and len(texts) == len(values) and length is not None and length <= 2:
        for transform, (true, false) in _BOOLEANS:
            # Y/N seen alone is still a flag (a soft-delete column is often all 'N'); 1 or A alone is not.
            if distinct == {true, false} or (transform == "yes_no" and distinct and distinct <= {true, false}):
                guess.type, guess.transform = "boolean", transform
                codes = " and ".join(repr(c) for c in sorted(distinct, reverse=True))
                guess.why.append(f"only {codes} sampled: a flag")
                return
    if texts and distinct - {""} and all(t == "" or _MDY.match(t) for t in distinct):
        guess.type, guess.transform = "date", "mm/dd/yyyy"
        guess.null_if = [""] if "" in distinct else None
        guess.why.append(
            "every sampled value is an MM/DD/YYYY string" + ("; '' read as null" if "" in distinct else "")
        )
        return
    digits = [int(t) for t in distinct if t.isascii() and t.isdigit() and len(t) == 8]
    if digits and len(digits) == len(distinct) and all(_yyyymmdd(v)[1] for v in digits):
        # Not applied: writes and filters would then compare the text column with numbers.
        guess.why.append("the values look like YYYYMMDD digits: transform: yyyymmdd, type: date would serve dates")
    if is_char:
        guess.transform, guess.length = "trim", length
        guess.why.append(f"CHAR({length}): served without its padding blanks, padded again for comparisons")
    if texts and 1 < len(distinct) <= _MAX_CODES and all(_CODE.match(t) for t in distinct):
        codes = ", ".join(f"{c}: {c.lower()}" for c in sorted(distinct))
        guess.why.append(f"{len(distinct)} one-letter codes sampled: name them and uncomment the map")
        guess.hints.append(f"map: {{{codes}}}")


def guess_field(column: Mapping[str, Any], values: list[Any]) -> FieldGuess:
    """Propose the field for a reflected column (``Inspector.get_columns`` entry) and its sampled values.

    Args:
        column: name, SQL type and nullability from the catalogue.
        values: the column's values in the sampled rows (SQL NULLs included).
    """
    type_ = column["type"]
    guess = FieldGuess(column=column["name"], nullable=bool(column.get("nullable", True)))
    kind = _sql_kind(type_)
    if kind is None:
        guess.skip = f"type {type_!r} has no API form"
        return guess
    guess.type = kind
    present = [v for v in values if v is not None]
    name_words = words(column["name"])
    if kind == "integer":
        _int_guess(guess, present, name_words)
    elif kind == "string":
        length = getattr(type_, "length", None)
        _text_guess(guess, present, length, isinstance(type_, sa.CHAR | sa.NCHAR))
    if not values and kind in ("integer", "string"):
        guess.why.append("no rows sampled: guessed from the SQL type alone")
    return guess
