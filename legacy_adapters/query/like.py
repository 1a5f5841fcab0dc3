"""One rule for ``like`` and ``ilike`` on every backend, whatever its collation.

The API pattern has one wildcard, ``*`` (any run of characters, also none); ``\\*`` is a
literal asterisk, ``\\\\`` a literal backslash, and every other character stands for
itself (``%``, ``_``, ``?`` and ``[`` included). ``like`` compares characters exactly;
``ilike`` lets a character match any character with the same simple Unicode case fold
(``é``/``É``, ``ü``/``Ü``, the three Greek sigmas, ``k``/``K``/Kelvin sign), one character for one,
so ``ß`` does not match ``ss``.

Collations disagree on both (SQLite's LIKE folds A-Z only, MariaDB's ``_ci`` collations
also ignore accents, SQL Server's follow the column), so no backend's own case rule is
used: each gets an exact comparison, and ``ilike`` spells the case variants out as
character classes. SQLite: ``GLOB`` (case-sensitive, UTF-8 aware). PostgreSQL: ``LIKE``,
and ``~`` for classes. MariaDB: the value in ``utf8mb4_bin``, then ``LIKE`` or ``REGEXP``.
SQL Server: ``LIKE`` (which has classes) under ``Latin1_General_100_BIN2_UTF8`` (2019 and
later) or ``Latin1_General_100_BIN2`` (older servers, which lack UTF-8 collations).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

__all__ = ("MSSQL_COLLATION", "MSSQL_COLLATION_BEFORE_2019", "LikePattern", "PatternMatch", "case_class", "parse_like")

MSSQL_COLLATION = "Latin1_General_100_BIN2_UTF8"
"""Code-point comparison on SQL Server 2019 and later, for ``nvarchar`` and any ``varchar``."""
MSSQL_COLLATION_BEFORE_2019 = "Latin1_General_100_BIN2"
"""The same for older servers, which have no UTF-8 collations (exact for ``nvarchar``)."""

_STAR = object()
_LAST_CASED = 0x20000  # no cased letters lie beyond the Supplementary Multilingual Plane


def _fold(char: str) -> str:
    """Simple case folding: one character for one (``ß`` stays ``ß``; ``ẞ`` folds to it)."""
    folded = char.casefold()
    if len(folded) == 1:
        return folded
    lower = char.lower()
    return lower if len(lower) == 1 else char


@functools.cache
def _variants() -> dict[str, frozenset[str]]:
    # Built once, on the first ilike (about 0.1 s): most characters fold to themselves.
    groups: dict[str, set[str]] = {}
    for point in range(_LAST_CASED):
        char = chr(point)
        if char.casefold() != char and (folded := _fold(char)) != char:
            groups.setdefault(folded, {folded}).add(char)
    return {key: frozenset(chars) for key, chars in groups.items()}


def case_class(char: str) -> frozenset[str]:
    """Every character ``ilike`` lets ``char`` match, ``char`` included."""
    return _variants().get(_fold(char), frozenset({char}))


@dataclass(frozen=True, slots=True)
class LikePattern:
    """A parsed API pattern: literal characters and ``*`` wildcards, in order."""

    tokens: tuple[Any, ...]
    insensitive: bool

    @property
    def ends_with_star(self) -> bool:
        return bool(self.tokens) and self.tokens[-1] is _STAR

    def matches(self, text: str) -> bool:
        """The rule in Python: what every backend's SQL must agree with (code maps use it directly)."""
        parts = []
        for token in self.tokens:
            if token is _STAR:
                parts.append(".*")
            elif self.insensitive:
                parts.append("[" + "".join(re.escape(c) for c in sorted(case_class(token))) + "]")
            else:
                parts.append(re.escape(token))
        return re.fullmatch("".join(parts), text, re.DOTALL) is not None

    def units(self) -> list[Any]:
        """Tokens with each literal widened to its case class (``ilike``), as sorted tuples."""
        out: list[Any] = []
        for token in self.tokens:
            if token is _STAR:
                if not out or out[-1] is not _STAR:  # '**' is '*'
                    out.append(_STAR)
            else:
                out.append(tuple(sorted(case_class(token))) if self.insensitive else (token,))
        return out


def parse_like(text: str, *, insensitive: bool) -> LikePattern:
    """Parse an API pattern.

    Raises:
        ValueError: the pattern ends with a lone backslash, which escapes nothing.
    """
    tokens: list[Any] = []
    escaped = False
    for char in text:
        if escaped:
            tokens.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            tokens.append(_STAR if char == "*" else char)
    if escaped:
        raise ValueError("the pattern ends with a lone backslash; write \\\\ for a backslash, \\* for an asterisk")
    return LikePattern(tuple(tokens), insensitive)


class PatternMatch(sa.sql.expression.ColumnElement[bool]):
    """``expression`` matches ``pattern`` by the API's rule, compiled per dialect."""

    inherit_cache = False  # the pattern is rendered into a bound value per statement
    type = sa.types.NullType()  # type: ignore[assignment]  # SQLAlchemy's own idiom for a type-less element

    def __init__(self, expression: sa.ColumnElement[Any], pattern: LikePattern) -> None:
        self.operand = expression
        self.pattern = pattern


def _like_text(units: list[Any], specials: str) -> str | None:
    """A LIKE pattern with ``\\`` as escape, or None when a class needs more than one character."""
    out = []
    for unit in units:
        if unit is _STAR:
            out.append("%")
        elif len(unit) > 1:
            return None
        else:
            out.append("\\" + unit[0] if unit[0] in specials else unit[0])
    return "".join(out)


def _regex(units: list[Any], *, end: str) -> str:
    out = ["^"]
    for unit in units:
        if unit is _STAR:
            out.append(".*")
        elif len(unit) > 1:  # case variants are letters: nothing to escape inside the class
            out.append("[" + "".join(unit) + "]")
        else:
            # Only ASCII punctuation is special in a regex; other characters stand for themselves.
            char = unit[0]
            out.append("\\" + char if char.isascii() and not char.isalnum() else char)
    out.append(end)
    return "".join(out)


def _bind(compiler: Any, value: str, **kw: Any) -> str:
    text: str = compiler.process(sa.literal(value, sa.String()), **kw)  # bound, never inlined
    return text


@compiles(PatternMatch)
def _generic(element: PatternMatch, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.operand, **kw)
    units = element.pattern.units()
    like = _like_text(units, "\\%_")
    if like is not None:
        return f"{column} LIKE {_bind(compiler, like, **kw)} ESCAPE '\\'"
    # No classes in standard LIKE: an engine we do not know folds with its own lower().
    lowered = _like_text([u if u is _STAR else (_fold(u[0]),) for u in units], "\\%_")
    return f"lower({column}) LIKE {_bind(compiler, lowered or '', **kw)} ESCAPE '\\'"


@compiles(PatternMatch, "sqlite")
def _sqlite(element: PatternMatch, compiler: Any, **kw: Any) -> str:
    out = []
    for unit in element.pattern.units():
        if unit is _STAR:
            out.append("*")
        elif len(unit) > 1:
            out.append("[" + "".join(unit) + "]")
        else:
            out.append(f"[{unit[0]}]" if unit[0] in "*?[" else unit[0])
    return f"{compiler.process(element.operand, **kw)} GLOB {_bind(compiler, ''.join(out), **kw)}"


@compiles(PatternMatch, "postgresql")
def _postgresql(element: PatternMatch, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.operand, **kw)
    units = element.pattern.units()
    like = _like_text(units, "\\%_")
    if like is not None:
        return f"{column} LIKE {_bind(compiler, like, **kw)} ESCAPE '\\'"
    return f"{column} ~ {_bind(compiler, _regex(units, end='$'), **kw)}"


@compiles(PatternMatch, "mysql")
@compiles(PatternMatch, "mariadb")
def _mariadb(element: PatternMatch, compiler: Any, **kw: Any) -> str:
    column = f"CONVERT({compiler.process(element.operand, **kw)} USING utf8mb4) COLLATE utf8mb4_bin"
    units = element.pattern.units()
    like = _like_text(units, "\\%_")
    if like is not None:
        return f"{column} LIKE {_bind(compiler, like, **kw)} ESCAPE '\\\\'"
    # (?s): '.' also matches a newline; \z: the very end (PCRE's '$' allows a final newline).
    return f"{column} REGEXP {_bind(compiler, '(?s)' + _regex(units, end=chr(92) + 'z'), **kw)}"


@compiles(PatternMatch, "mssql")
def _mssql(element: PatternMatch, compiler: Any, **kw: Any) -> str:
    out = []
    for unit in element.pattern.units():
        if unit is _STAR:
            out.append("%")
        elif len(unit) > 1:
            out.append("[" + "".join(unit) + "]")
        else:
            # '[' opens a class in T-SQL's LIKE; escaped, it is read literally like '%' and '_'.
            out.append("\\" + unit[0] if unit[0] in "\\%_[" else unit[0])
    column = compiler.process(element.operand, **kw)
    version = getattr(compiler.dialect, "server_version_info", None)  # None when compiled offline
    collation = MSSQL_COLLATION_BEFORE_2019 if version and version[0] < 15 else MSSQL_COLLATION
    return f"{column} COLLATE {collation} LIKE {_bind(compiler, ''.join(out), **kw)} ESCAPE '\\'"
