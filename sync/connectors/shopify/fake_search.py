"""Shopify's search syntax for the fake's ``products(query:)`` and ``customers(query:)``.

The subset the docs describe and clients use: ``field:value`` terms joined by
AND (implicit) or ``OR``, ``-term`` / ``NOT term`` negation, quoted values, a
trailing ``*`` prefix match, case-insensitive comparison, and bare words matched
against the object's default text fields. A field the object is not searchable by
matches nothing, so a query the fake does not understand can never pass for a
filter that returned everything.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ("CUSTOMER_FIELDS", "PRODUCT_FIELDS", "matches")

Values = Callable[[dict[str, Any]], Iterable[Any]]

PRODUCT_FIELDS: dict[str, Values] = {
    "id": lambda p: [p["id"].rsplit("/", 1)[1]],
    "title": lambda p: [p["title"]],
    "handle": lambda p: [p["handle"]],
    "status": lambda p: [p["status"]],
    "vendor": lambda p: [p["vendor"]],
    "product_type": lambda p: [p["productType"]],
    "tag": lambda p: p["tags"],
    "sku": lambda p: [v["sku"] for v in p["variants"]],
    "barcode": lambda p: [v["barcode"] for v in p["variants"]],
}
CUSTOMER_FIELDS: dict[str, Values] = {
    "id": lambda c: [c["id"].rsplit("/", 1)[1]],
    "email": lambda c: [c["email"]],
    "phone": lambda c: [c["phone"]],
    "first_name": lambda c: [c["firstName"]],
    "last_name": lambda c: [c["lastName"]],
    "tag": lambda c: c["tags"],
}
_DEFAULT_TEXT = {"products": ("title", "sku", "handle"), "customers": ("first_name", "last_name", "email")}


def _term_matches(record: dict[str, Any], term: str, fields: dict[str, Values], default: tuple[str, ...]) -> bool:
    name, sep, wanted = term.partition(":")
    if not sep:
        name, wanted = "", term
    wanted = wanted.lower()
    prefix = wanted.endswith("*")
    wanted = wanted.rstrip("*")
    if name:
        if name not in fields:
            return False
        candidates = [v for v in fields[name](record) if v is not None]
        return any(str(v).lower().startswith(wanted) if prefix else str(v).lower() == wanted for v in candidates)
    # A bare word: a substring of any default text field.
    return any(wanted in str(v).lower() for f in default for v in fields[f](record) if v is not None)


def matches(record: dict[str, Any], query: str | None, kind: str) -> bool:
    """Whether ``record`` (a stored product or customer) satisfies a Shopify search ``query``."""
    if not query or not query.strip():
        return True
    fields = PRODUCT_FIELDS if kind == "products" else CUSTOMER_FIELDS
    default = _DEFAULT_TEXT[kind]
    # `sku:"A B"` and `sku:'A B'` keep their spaces; a stray quote is taken literally.
    try:
        tokens = shlex.split(re.sub(r"\s+(AND)\s+", " ", query), posix=True)
    except ValueError:
        tokens = query.split()
    groups: list[list[str]] = [[]]  # OR of ANDs
    negate_next = False
    for token in tokens:
        if token == "OR":
            groups.append([])
            continue
        if token == "NOT":
            negate_next = True
            continue
        groups[-1].append(("-" if negate_next else "") + token)
        negate_next = False

    def holds(term: str) -> bool:
        if term.startswith("-") and len(term) > 1:
            return not _term_matches(record, term[1:], fields, default)
        return _term_matches(record, term, fields, default)

    return any(group and all(holds(t) for t in group) for group in groups)
