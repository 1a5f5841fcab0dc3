"""API names from legacy names: ``CUSTNO`` -> ``customer_number``, ``JOBMAST`` -> ``jobs``.

Legacy column names are abbreviations glued together without separators, so a
plain lower-casing (``custno``) tells an API user nothing. A name is split on
separators and camel-case humps first; each upper-case run is then segmented
into the fewest pieces that cover the most letters with known abbreviations
(``CUSTNO`` -> ``CUST`` + ``NO``), and each known piece is spelled out. Ordinary
words are in the dictionary too, so ``NOTES`` stays ``notes`` instead of
becoming ``NO`` + ``TES``. Unknown runs fall back to plain snake_case.
"""

from __future__ import annotations

import functools
import re

__all__ = ("field_name", "resource_name", "singular", "words")

ABBREVIATIONS: dict[str, str] = {
    # Numbers and identifiers.
    "NO": "number",
    "NBR": "number",
    "NUM": "number",
    "NR": "number",
    "ID": "id",
    "CD": "code",
    "CDE": "code",
    "SEQ": "sequence",
    "KEY": "key",
    # Dates and times.
    "DT": "date",
    "DTE": "date",
    "DATE": "date",
    "TM": "time",
    "TIME": "time",
    "YR": "year",
    "MO": "month",
    # Quantities and money.
    "QTY": "quantity",
    "AMT": "amount",
    "PRC": "price",
    "PRICE": "price",
    "COST": "cost",
    "BAL": "balance",
    "TOT": "total",
    "PCT": "percent",
    "HRS": "hours",
    "HR": "hour",
    "LIM": "limit",
    "CR": "credit",
    "ALLOC": "allocated",
    "CNT": "count",
    # Text and state.
    "DESC": "description",
    "DESCR": "description",
    "NM": "name",
    "NAME": "name",
    "STAT": "status",
    "STS": "status",
    "FL": "flag",
    "FLG": "flag",
    "IND": "indicator",
    "TYP": "type",
    "TYPE": "type",
    "ADDR": "address",
    "TEL": "phone",
    "PHN": "phone",
    "EMAIL": "email",
    "NOTES": "notes",
    "NOTE": "note",
    "CMT": "comment",
    # Business entities.
    "CUST": "customer",
    "CUS": "customer",
    "VEND": "vendor",
    "SUPP": "supplier",
    "ORD": "order",
    "ORDER": "order",
    "INV": "invoice",
    "ITEM": "item",
    "ITM": "item",
    "PART": "part",
    "JOB": "job",
    "OP": "operation",
    "OPS": "operations",
    "EMP": "employee",
    "WHSE": "warehouse",
    "WHS": "warehouse",
    "LOC": "location",
    "UOM": "unit_of_measure",
    "STK": "stock",
    "SKU": "sku",
    "WRK": "work",
    "CTR": "center",
    "MAST": "master",
    "MST": "master",
    "HDR": "header",
    "DTL": "detail",
    "LN": "line",
    "HIST": "history",
    # Qualifiers.
    "STD": "standard",
    "ACT": "active",
    "ACTV": "active",
    "DEL": "deleted",
    "STR": "start",
    "STRT": "start",
    "END": "end",
    "DUE": "due",
    "OPEN": "open",
    "LAST": "last",
    "RCV": "received",
    "RUSH": "rush",
    "DONE": "done",
    "PRIO": "priority",
    "ONHAND": "on_hand",
    # Distribution (AS/400 order entry).
    "SHIP": "ship",
    "SHP": "ship",
    "LOG": "log",
    "LINE": "line",
    "LINES": "lines",
    "BRANCH": "branch",
    "CARRIER": "carrier",
    "WEIGHT": "weight",
    "WGT": "weight",
    "REQ": "requested",
    "PROM": "promised",
    "BACK": "back",
    "CRT": "created",
    "LRCV": "last_received",
    "DISCONT": "discontinued",
    "LIMIT": "limit",
    "LIST": "list",
    "USER": "user",
    "USR": "user",
    "REGION": "region",
    "SIGNED": "signed",
}
"""Legacy abbreviation (upper case) -> API spelling. Whole words are listed so they are not split."""

_TABLE_SUFFIXES = ("master", "file", "table", "tbl")
"""Dropped from resource names: ``CUSTMAST`` serves ``customers``, not ``customer_masters``."""
_RUN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _with_words(abbreviations: dict[str, str]) -> dict[str, str]:
    """The abbreviations plus every word they spell out, singular and plural, as pieces of their own.

    Without them a whole word is cut into an abbreviation and leftovers: ``CUSTOMERS`` became
    ``CUST`` + ``OMERS`` (``customer_omers``), ``ACTIVE`` became ``ACT`` + ``IVE``.
    """
    pieces = dict(abbreviations)
    for spelled in abbreviations.values():
        for word in spelled.split("_"):
            for form in (word, _plural(word)):
                pieces.setdefault(form.upper(), form)
    return pieces


def _plural(word: str) -> str:
    if word.endswith("s"):
        return word
    if word.endswith("y") and word[-2:-1] not in set("aeiou"):
        return word[:-1] + "ies"
    if word.endswith(("ch", "sh", "x", "z")):
        return word + "es"
    return word + "s"


_PIECES = _with_words(ABBREVIATIONS)
"""What a run of capitals may be cut into: abbreviations and whole words."""
_LONGEST = max(map(len, _PIECES))


@functools.lru_cache(maxsize=4096)
def _segment(run: str) -> tuple[str, ...]:
    """Split an upper-case run into pieces: most letters covered by known pieces, then fewest pieces."""
    # best[i] = (unknown letters, pieces, pieces) for run[:i]; dynamic programming over cut points.
    best: list[tuple[int, int, tuple[str, ...]]] = [(0, 0, ()), *[(len(run) + 1, 0, ())] * len(run)]
    for end in range(1, len(run) + 1):
        for start in range(max(0, end - _LONGEST), end):
            piece = run[start:end]
            if piece in _PIECES:
                unknown, count, pieces = best[start]
                candidate = (unknown, count + 1, (*pieces, piece))
                if candidate[:2] < best[end][:2]:
                    best[end] = candidate
        # An unknown letter extends the previous unknown piece instead of starting a new one.
        unknown, count, pieces = best[end - 1]
        if pieces and pieces[-1] not in _PIECES:
            candidate = (unknown + 1, count, (*pieces[:-1], pieces[-1] + run[end - 1]))
        else:
            candidate = (unknown + 1, count + 1, (*pieces, run[end - 1]))
        if candidate[:2] < best[end][:2]:
            best[end] = candidate
    return best[len(run)][2]


def words(legacy: str) -> list[str]:
    """The spelled-out words of a legacy name, lower case: ``CUSTNO`` -> ``["customer", "number"]``."""
    result: list[str] = []
    for run in _RUN.findall(legacy):
        if run.isupper():
            result.extend(_PIECES.get(p, p.lower()) for p in _segment(run))
        else:
            result.append(_PIECES.get(run.upper(), run.lower()))
    return [w for word in result for w in word.split("_")]


def field_name(legacy: str) -> str:
    """A snake_case API field name for a column; never empty, never starting with a digit."""
    name = "_".join(words(legacy)) or "column"
    return f"c_{name}" if name[0].isdigit() else name


def singular(name: str) -> str:
    """``stock_balances`` -> ``stock_balance``; good enough for relation names."""
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith(("ches", "shes", "sses", "xes")):
        return name[:-2]
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def resource_name(table: str) -> str:
    """A plural resource name for a table: ``JOBMAST`` -> ``jobs``, ``STKBAL`` -> ``stock_balances``."""
    parts = words(table)
    trimmed = [w for w in parts if w not in _TABLE_SUFFIXES] or parts or ["table"]
    trimmed[-1] = _plural(trimmed[-1])
    name = "_".join(trimmed)
    return f"t_{name}" if name[0].isdigit() else name
