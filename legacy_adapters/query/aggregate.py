"""Grouped aggregates in one statement: served values per row, groups, then having, keyset and limit.

``SELECT … FROM (SELECT g0, count(*) n, sum(x0) a0 … FROM (SELECT <served g0>, <served x0> …
FROM table WHERE mapping-where AND filters AND row filters) r GROUP BY g0) g WHERE having
AND keyset ORDER BY … LIMIT n+1``. The innermost select turns stored values into served
ones (``served.py``), so the groups are over plain derived columns (no expression an engine
must match between SELECT and GROUP BY). Everything is computed by the database; Python
only decodes each group's values into API form (a sum of cents into a decimal, a bucket
into a date) and divides an average's exact sum by its count.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from legacy_adapters.query.builder import Condition, where_clauses
from legacy_adapters.query.filters import lexicographic
from legacy_adapters.query.keyset import Keyset, SortKey
from legacy_adapters.query.served import as_number, decode_quietly

if TYPE_CHECKING:
    from legacy_adapters.database import Database
    from legacy_adapters.query.resource import Resource
    from legacy_adapters.query.served import Served

__all__ = (
    "AVG_EXTRA_PLACES",
    "FUNCTIONS",
    "AggregatePage",
    "AggregateQuery",
    "Function",
    "Group",
    "Having",
    "Metric",
    "run_aggregate",
)

Function = Literal["count_distinct", "sum", "avg", "min", "max"]
FUNCTIONS: tuple[Function, ...] = ("count_distinct", "sum", "avg", "min", "max")
AVG_EXTRA_PLACES = 4
"""An average has the field's decimal places plus these (rounded half to even)."""


@dataclass(frozen=True, slots=True)
class Group:
    """One ``group_by`` entry: its name in the answer (``status``, ``due_date:month``) and served value."""

    name: str
    served: Served


@dataclass(frozen=True, slots=True)
class Metric:
    """One aggregate: ``sum`` of ``quantity`` is named ``sum.quantity``; ``count`` has no field."""

    function: Function | Literal["count"]
    field: str | None = None
    served: Served | None = None

    @property
    def name(self) -> str:
        return self.function if self.field is None else f"{self.function}.{self.field}"


@dataclass(frozen=True, slots=True)
class Having:
    """``metric op value`` with ``value`` already in stored terms (cents, YYYYMMDD, a count).

    For ``avg`` the value is ``(numerator, denominator)``: avg > n/d is compared as ``sum * d > n * count``.
    """

    metric: str
    op: Literal["eq", "ne", "lt", "lte", "gt", "gte"]
    value: Any


@dataclass(frozen=True, slots=True)
class AggregateQuery:
    resource: Resource
    groups: tuple[Group, ...]
    metrics: tuple[Metric, ...]
    conditions: tuple[Condition, ...] = ()
    having: tuple[Having, ...] = ()
    sort: tuple[tuple[str, bool], ...] = ()
    """(group or metric name, descending); every group follows, so the order is total."""
    limit: int = 50
    after: tuple[Any, ...] | None = None

    @property
    def order_names(self) -> tuple[str, ...]:
        named = [name for name, _ in self.sort]
        return (*named, *(g.name for g in self.groups if g.name not in named))


@dataclass(slots=True)
class AggregatePage:
    groups: list[dict[str, Any]]
    last: tuple[Any, ...] | None
    """The order values of the last group when more follow (for the cursor), else None."""


class _Columns:
    """The grouped subquery's columns by metric or group name."""

    def __init__(self, query: AggregateQuery) -> None:
        self.query = query
        rows: list[sa.ColumnElement[Any]] = [g.served.expression.label(f"g{i}") for i, g in enumerate(query.groups)]
        inputs: dict[str, int] = {}
        for metric in query.metrics:
            if metric.served is not None and metric.field not in inputs:
                inputs[metric.field or ""] = len(inputs)
                rows.append(metric.served.expression.label(f"x{inputs[metric.field or '']}"))
        resource = query.resource
        select = sa.select(*(rows or [sa.literal_column("1").label("one")])).select_from(resource.table)
        clauses = where_clauses(resource, query.conditions)
        if clauses:
            select = select.where(*clauses)
        inner = select.subquery("r")
        grouped: list[sa.ColumnElement[Any]] = [inner.c[f"g{i}"] for i in range(len(query.groups))]
        grouped.append(sa.func.count().label("n"))
        for j, metric in enumerate(query.metrics):
            if metric.function == "count":
                continue
            x = inner.c[f"x{inputs[metric.field or '']}"]
            if metric.function == "count_distinct":
                grouped.append(sa.func.count(sa.distinct(x)).label(f"a{j}"))
            elif metric.function == "avg":
                grouped.append(sa.func.sum(x).label(f"a{j}"))
                grouped.append(sa.func.count(x).label(f"c{j}"))
            else:
                grouped.append(getattr(sa.func, metric.function)(x).label(f"a{j}"))
        statement = sa.select(*grouped).select_from(inner)
        if query.groups:
            statement = statement.group_by(*(inner.c[f"g{i}"] for i in range(len(query.groups))))
        self.table = statement.subquery("g")
        self.index = {m.name: j for j, m in enumerate(query.metrics)}

    def group(self, name: str) -> sa.ColumnElement[Any]:
        return self.table.c[f"g{next(i for i, g in enumerate(self.query.groups) if g.name == name)}"]

    def metric(self, name: str) -> sa.ColumnElement[Any]:
        j = self.index[name]
        metric = self.query.metrics[j]
        if metric.function == "count":
            return self.table.c.n
        if metric.function == "avg":
            # Orders like the exact average on every engine that divides decimals (floats on SQLite).
            total, count = self.table.c[f"a{j}"], self.table.c[f"c{j}"]
            return sa.case((count > 0, total * sa.literal_column("1.0") / count), else_=sa.null())
        return self.table.c[f"a{j}"]

    def named(self, name: str) -> sa.ColumnElement[Any]:
        return self.metric(name) if name in self.index else self.group(name)

    def having(self, having: Having) -> sa.ColumnElement[bool]:
        j = self.index[having.metric]
        metric = self.query.metrics[j]
        if metric.function == "avg":
            numerator, denominator = having.value
            total, count = self.table.c[f"a{j}"], self.table.c[f"c{j}"]
            left, right = total * _literal(denominator), count * _literal(numerator)
            return sa.and_(count > 0, _compare(left, having.op, right))
        return _compare(self.metric(having.metric), having.op, having.value)


def _literal(value: int) -> sa.ColumnElement[Any]:
    return sa.literal_column(str(int(value)), sa.BigInteger())


def _compare(left: sa.ColumnElement[Any], op: str, right: Any) -> sa.ColumnElement[bool]:
    if op == "eq":
        equal: sa.ColumnElement[bool] = left == right
        return equal
    if op == "ne":
        differ: sa.ColumnElement[bool] = left != right
        return differ
    return lexicographic((left,), (right,), op, (False,))


def _avg(total: Any, count: Any, served: Served) -> Any:
    if total is None or not count:
        return None
    decoded = served.decode(total)  # the sum in API units (a Decimal for implied decimals)
    count = as_number(count)
    if decoded is None:
        return None
    places = (served.places or 0) + AVG_EXTRA_PLACES
    average = (Decimal(decoded) / Decimal(int(count))).quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)
    return format(average, "f") if served.as_text else average


def run_aggregate(database: Database, query: AggregateQuery) -> AggregatePage:
    """One page of groups, ordered by ``query.sort`` then every group, after ``query.after``."""
    columns = _Columns(query)
    order = tuple(
        SortKey(columns.named(name), descending, nullable=True)
        for name, descending in (*query.sort, *((n, False) for n in query.order_names[len(query.sort) :]))
    )
    selected: list[sa.ColumnElement[Any]] = [columns.table.c[c.name] for c in columns.table.c]
    selected.extend(key.column.label(f"k{i}") for i, key in enumerate(order))
    statement = sa.select(*selected).select_from(columns.table)
    conditions = [columns.having(h) for h in query.having]
    if query.after is not None:
        conditions.append(Keyset(order, query.after).clause())
    if conditions:
        statement = statement.where(*conditions)
    statement = statement.order_by(*(k.order_by() for k in order)).limit(query.limit + 1)
    raw_rows = database.fetch_all(statement)
    more = len(raw_rows) > query.limit
    raw_rows = raw_rows[: query.limit]
    names = [c.name for c in columns.table.c]
    groups = [_decode(query, dict(zip(names, row, strict=False))) for row in raw_rows]
    # Text groups stay text; everything else is a number, whatever type the driver gave it.
    textual = [_textual(query, name) for name in query.order_names]
    last = None
    if more and raw_rows:
        last = tuple(v if text else as_number(v) for v, text in zip(raw_rows[-1][len(names) :], textual, strict=True))
    return AggregatePage(groups, last)


def _textual(query: AggregateQuery, name: str) -> bool:
    group = next((g for g in query.groups if g.name == name), None)
    return group is not None and group.served.kind in ("text", "code")


def _decode(query: AggregateQuery, row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if query.groups:
        out["group"] = {g.name: decode_quietly(g.served.decode, row[f"g{i}"]) for i, g in enumerate(query.groups)}
    out["count"] = int(as_number(row["n"]))
    for j, metric in enumerate(query.metrics):
        if metric.function == "count":
            continue
        assert metric.served is not None and metric.field is not None
        if metric.function == "count_distinct":
            value: Any = int(as_number(row[f"a{j}"]) or 0)
        elif metric.function == "avg":
            value = _avg(row[f"a{j}"], row[f"c{j}"], metric.served)
        else:
            value = decode_quietly(metric.served.decode, row[f"a{j}"])
        out.setdefault(metric.function, {})[metric.field] = value
    return out
