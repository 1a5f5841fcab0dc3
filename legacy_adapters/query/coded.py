"""Filters on code-mapped fields, in terms of the values the API serves.

A code map turns a finite set of stored codes into names; everything else stored in the
column is served as the map's ``unmapped`` rule says: null (the default), the code itself
(``raw``) or a fixed ``default``. A filter must select exactly the rows whose served value
satisfies it, so each operator is decided over the names in Python and becomes a condition
on stored codes: ``status[isnull]=true`` finds SQL NULLs, sentinels and, under
``unmapped: null``, every code the map does not know ('??'); ``status[ne]=shipped``
excludes those same rows, because a null differs from nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from legacy_adapters.query.exact import CaseExact
from legacy_adapters.query.like import LikePattern, PatternMatch
from legacy_adapters.transforms.text import raw_code

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField
    from legacy_adapters.transforms.text import CodeMap

__all__ = ("coded_clause", "coded_pairs")


def coded_pairs(field: BoundField, codes: CodeMap) -> list[tuple[Any, str]]:
    """(stored code, API name) for every form a known code may be stored in.

    Both the padded code and the bare one: SQLite keeps a CHAR value as written, so a
    row another program wrote unpadded ('X' in a CHAR(2)) must still count as 'X '.
    A code that is also a null_if sentinel reads as null, so it is no name's code.
    """
    null_if = field.codec.null_if
    return [
        (stored, name)
        for code, name in codes.pairs
        for stored in dict.fromkeys((field.codec.stored_code(code), code))
        if null_if is None or not null_if.is_null(stored)
    ]


class _Coded:
    """One code-mapped field's column, its known stored codes and its unmapped rule."""

    def __init__(self, field: BoundField, codes: CodeMap) -> None:
        self.column: sa.ColumnElement[Any] = field.columns[0]
        self.codes = codes
        self.sentinels = list(field.codec.sentinels)
        self.pairs = coded_pairs(field, codes)
        self.known = [stored for stored, _ in self.pairs]
        numeric = [isinstance(stored, int) for stored in self.known]
        self.numeric = bool(numeric) and all(numeric)
        # Codes are compared code point by code point: 'r' is not 'R' on MariaDB either (exact.py).
        self.exact: sa.ColumnElement[Any] = self.column if self.numeric else CaseExact(self.column)

    def present(self) -> sa.ColumnElement[bool]:
        """A stored value that is neither SQL NULL nor a sentinel."""
        present = self.column.is_not(None)
        return sa.and_(present, self.column.not_in(self.sentinels)) if self.sentinels else present

    def unknown(self) -> sa.ColumnElement[bool]:
        """A present stored value the map does not list."""
        return sa.and_(self.present(), self.exact.not_in(self.known))

    def served_non_null(self) -> sa.ColumnElement[bool]:
        if self.codes.unmapped == "null":
            return self.exact.in_(self.known)
        return self.present()

    def served_satisfies(
        self, test: Callable[[str], bool], raw: Callable[[sa.ColumnElement[Any]], sa.ColumnElement[bool]] | None
    ) -> sa.ColumnElement[bool]:
        """Rows whose served value is non-null and passes ``test``.

        ``raw`` is the same test in SQL on the trimmed stored code, needed under ``unmapped: raw``,
        where the served value of an unknown code is the code itself.
        """
        hits = [stored for stored, name in self.pairs if test(name)]
        terms: list[sa.ColumnElement[bool]] = []
        if hits:
            terms.append(self.exact == hits[0] if len(hits) == 1 else self.exact.in_(hits))
        default = self.codes.default
        if default is not None and test(default):
            terms.append(self.unknown())
        if self.codes.unmapped == "raw" and raw is not None:
            terms.append(sa.and_(self.unknown(), raw(self._trimmed())))
        return sa.or_(*terms) if terms else sa.false()

    def _trimmed(self) -> sa.ColumnElement[Any]:
        return self.column if self.numeric else CaseExact(sa.func.rtrim(self.column))

    def raw_equals(self, values: tuple[str, ...]) -> Callable[[sa.ColumnElement[Any]], sa.ColumnElement[bool]]:
        """Stored codes served as one of ``values`` by ``unmapped: raw`` (numbers compare as numbers)."""
        if self.numeric:
            wanted: list[Any] = [int(v) for v in values if v.isascii() and v.isdigit() and raw_code(int(v)) == v]
        else:
            wanted = list(values)
        return lambda column: column.in_(wanted) if wanted else sa.false()


def coded_clause(field: BoundField, codes: CodeMap, op: str, value: Any) -> sa.ColumnElement[bool]:
    """The condition selecting exactly the rows whose served value satisfies ``op value``."""
    coded = _Coded(field, codes)
    if op == "isnull":
        non_null = coded.served_non_null()
        # NOT over a NULL column is NULL, not true: SQL NULL is spelled out on the null side.
        return sa.or_(coded.column.is_(None), sa.not_(non_null)) if value else non_null
    if op in ("like", "ilike"):
        pattern: LikePattern = value
        # Raw numeric codes are refused before this (filters.py): only names are matched then.
        raw = None if coded.numeric else (lambda column: PatternMatch(column, pattern))
        return coded.served_satisfies(pattern.matches, raw)
    values: tuple[str, ...] = tuple(value) if op == "in" else (value,)
    wanted = coded.served_satisfies(lambda name: name in values, coded.raw_equals(values))
    if op == "ne":
        return sa.and_(coded.served_non_null(), sa.not_(wanted))
    return wanted
