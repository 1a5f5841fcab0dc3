"""``GET /{version}/{resource}/aggregate``: groups and totals computed by the database, answered in API form.

``?group_by=status,due_date:month&sum=quantity&avg=quantity&min=due_date&status[ne]=complete
&having.count[gt]=10&sort=-sum.quantity&limit=20`` answers
``{"data": [{"group": {"status": "released", "due_date:month": "2026-11"}, "count": 12,
"sum": {"quantity": 1234.50}, …}], "next_cursor": …}``. Filters are a list's filters
(``params.parse_filters``), the caller's view is its guard's (``Access``: row filters and
hidden fields apply as for a list), and the groups are paged with a signed keyset cursor.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get

from gateway.auth.guards import access_of, read_guard
from gateway.exceptions import BadRequest
from gateway.executor import offloaded
from gateway.negotiation import JSON, choose_media_type
from gateway.pagination import InvalidCursor
from gateway.params import Errors, check_filters, known, parse_filters, parse_int
from legacy_adapters.query.aggregate import (
    FUNCTIONS,
    AggregateQuery,
    Group,
    Having,
    Metric,
    run_aggregate,
)
from legacy_adapters.query.served import BUCKETS, bucket, served
from legacy_adapters.query.values import INT64_MAX, parse_value
from legacy_adapters.transforms import Unencodable
from legacy_adapters.transforms.numbers import on_grid

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from gateway.auth.guards import Access
    from gateway.context import GatewayContext
    from legacy_adapters.mapping.model import ApiConfig
    from legacy_adapters.query.filters import Comparison
    from legacy_adapters.query.resource import Resource
    from legacy_adapters.query.served import Served

__all__ = ("AggregateParams", "aggregate_handlers", "parse_aggregate_params")

_CONTROL = frozenset({"group_by", *FUNCTIONS, "sort", "limit", "cursor"})
_HAVING = re.compile(r"^having\.([a-z_]+(?:\.[A-Za-z_][A-Za-z0-9_]*)?)(?:\[([a-z]+)\])?$")
_HAVING_OPS = ("eq", "ne", "lt", "lte", "gt", "gte")
_WIDEST = INT64_MAX // 2**8
"""Comparison values stay well inside BIGINT, so no driver overflows binding them (nor sum * d in SQL)."""
_encoder = msgspec.json.Encoder(decimal_format="number")


def _is_control(name: str) -> bool:
    return name in _CONTROL or name.startswith("having.")


@dataclass(frozen=True, slots=True)
class AggregateParams:
    groups: tuple[Group, ...]
    metrics: tuple[Metric, ...]
    filters: tuple[Comparison, ...]
    having: tuple[Having, ...]
    sort: tuple[tuple[str, bool], ...]
    limit: int
    cursor: str | None
    fingerprint: str

    def query(self, resource: Resource, access: Access, after: tuple[Any, ...] | None = None) -> AggregateQuery:
        return AggregateQuery(
            resource,
            self.groups,
            self.metrics,
            conditions=(*access.conditions, *self.filters),
            having=self.having,
            sort=self.sort,
            limit=self.limit,
            after=after,
        )


def _names(raw: str | None) -> list[str]:
    return [n.strip() for n in raw.split(",") if n.strip()] if raw else []


def parse_aggregate_params(
    query: Iterable[tuple[str, str]], resource: Resource, access: Access, api: ApiConfig
) -> AggregateParams:
    """Validate an aggregate request's query string; raise ``BadRequest`` listing every problem."""
    errors = Errors()
    filters, control, identity = parse_filters(query, access, errors, _is_control)
    groups = _groups(control.get("group_by"), access, errors)
    metrics = _metrics(control, access, errors)
    by_name = {m.name: m for m in metrics}
    having = [
        h
        for name, value in control.items()
        if name.startswith("having.") and (h := _having(name, value, by_name, access, errors)) is not None
    ]
    sortable = {g.name for g in groups} | set(by_name)
    sort: list[tuple[str, bool]] = []
    for item in _names(control.get("sort")):
        name = item.lstrip("-+")
        if name not in sortable:
            errors.add("sort", f"sort by a group or an aggregate of this request ({known(sortable)}), not {name!r}")
        elif name not in (n for n, _ in sort):
            sort.append((name, item.startswith("-")))
    limit = parse_int(control.get("limit"), "limit", api.default_limit, 1, api.max_limit, errors)
    check_filters(filters, errors)
    errors.raise_if_any()
    signature = repr(
        (
            resource.qualified_name,
            "aggregate",
            sorted(identity),
            [g.name for g in groups],
            [m.name for m in metrics],
            sorted((h.metric, h.op, repr(h.value)) for h in having),
            sort,
        )
    )
    return AggregateParams(
        groups=tuple(groups),
        metrics=tuple(metrics),
        filters=tuple(filters),
        having=tuple(having),
        sort=tuple(sort),
        limit=limit,
        cursor=control.get("cursor") or None,
        fingerprint=hashlib.sha256(signature.encode()).hexdigest()[:16],
    )


def _groups(raw: str | None, access: Access, errors: Errors) -> list[Group]:
    groups: list[Group] = []
    for item in _names(raw):
        name, _, part = item.partition(":")
        field = access.fields.get(name)
        if field is None:
            errors.add("group_by", f"unknown field {name!r} (fields: {known(access.fields)})")
            continue
        if part and part not in BUCKETS:
            errors.add("group_by", f"{item}: group a date by {', '.join(BUCKETS)}")
            continue
        value = bucket(field, part) if part else served(field)
        if isinstance(value, str):
            errors.add("group_by", value)
        elif item in (g.name for g in groups):
            errors.add("group_by", f"{item} is listed twice")
        else:
            groups.append(Group(item, value))
    return groups


def _metrics(control: dict[str, str], access: Access, errors: Errors) -> list[Metric]:
    metrics = [Metric("count")]
    for function in FUNCTIONS:
        for name in dict.fromkeys(_names(control.get(function))):
            field = access.fields.get(name)
            if field is None:
                errors.add(function, f"unknown field {name!r} (fields: {known(access.fields)})")
                continue
            value = served(field)
            if isinstance(value, str):
                errors.add(function, value)
            elif function in ("sum", "avg") and not value.summable:
                errors.add(function, f"{function} applies to numbers; {name} is not one")
            elif function in ("min", "max") and not value.ordered:
                errors.add(function, f"{function} applies to numbers and dates (text order differs between databases)")
            else:
                metrics.append(Metric(function, name, value))
    return metrics


def _having(name: str, raw: str, metrics: dict[str, Metric], access: Access, errors: Errors) -> Having | None:
    match = _HAVING.match(name)
    if match is None:
        errors.add(name, "write having.<aggregate>[op]=value, e.g. having.count[gt]=10 or having.sum.quantity[gte]=5")
        return None
    target, op = match.group(1), match.group(2) or "eq"
    if op not in _HAVING_OPS:
        errors.add(name, f"unknown operator {op!r} (operators: {', '.join(_HAVING_OPS)})")
        return None
    metric = metrics.get(target)
    if metric is None:
        function, _, field = target.partition(".")
        hint = f"add {function}={field} to the request" if field else "name an aggregate of this request"
        errors.add(name, f"{target} is not an aggregate of this request: {hint}")
        return None
    try:
        value = _having_value(metric, op, raw, access)
    except (ValueError, Unencodable) as exc:
        errors.add(name, str(exc))
        return None
    return None if value is None else Having(target, op, value)  # type: ignore[arg-type]  # op checked above


def _having_value(metric: Metric, op: str, raw: str, access: Access) -> Any:
    """The comparison value in the terms of the metric's SQL expression."""
    if metric.function in ("count", "count_distinct"):
        return parse_value("integer", raw)
    assert metric.field is not None and metric.served is not None
    field = access.fields[metric.field]
    value = parse_value(field.spec.type, raw)
    if metric.function == "avg":
        # avg > n/d is compared exactly as sum * d > n * 10^places * count (no rounding in SQL).
        numerator, denominator = Decimal(value).scaleb(metric.served.places or 0).as_integer_ratio()
        if max(abs(numerator), denominator) > _WIDEST:
            raise ValueError(f"{raw} is out of range for an average of {metric.field}")
        return numerator, denominator
    served_value: Served = metric.served
    places = served_value.places
    if places is not None and isinstance(value, Decimal):
        restated = on_grid(value, places, op)
        if isinstance(restated, bool):
            raise ValueError(f"{raw} has more than {places} decimals, which no {metric.name} can have")
        value = restated[1]
    assert served_value.encode is not None
    encoded = served_value.encode(value)
    if isinstance(encoded, int) and not -_WIDEST <= encoded <= _WIDEST:
        raise ValueError(f"{raw} is out of range for {metric.name}")
    return encoded


def _next_link(request: Request[Any, Any, Any], cursor: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    params.append(("cursor", cursor))
    return f"{request.url.path}?{urlencode(params)}"


def aggregate_handlers(ctx: GatewayContext, resource: Resource) -> list[HTTPRouteHandler]:
    """``GET /{resource}/aggregate`` for ``resource``, behind its read guard."""
    api = ctx.mapping.api

    def aggregate(request: Request[Any, Any, Any]) -> Response[Any]:
        access = access_of(request)
        choose_media_type(request.headers.get("accept"), offered=(JSON,))
        params = parse_aggregate_params(request.query_params.multi_items(), resource, access, api)
        after = None
        if params.cursor is not None:
            width = len(params.query(resource, access).order_names)
            try:
                after = ctx.cursors.decode(params.cursor, params.fingerprint, width)
            except InvalidCursor as exc:
                raise BadRequest(str(exc), errors=[{"parameter": "cursor", "detail": str(exc)}]) from None
        page = run_aggregate(ctx.reader.database, params.query(resource, access, after))
        body: dict[str, Any] = {"data": page.groups, "next_cursor": None}
        headers = {"Vary": "Accept, Authorization"}
        if page.last is not None:
            body["next_cursor"] = cursor = ctx.cursors.encode(page.last, params.fingerprint)
            headers["Link"] = f'<{_next_link(request, cursor)}>; rel="next"'
        return Response(_encoder.encode(body), media_type=JSON, headers=headers)

    return [
        get(
            f"/{resource.name}/aggregate",
            name=f"{resource.qualified_name}.aggregate",
            tags=[resource.name],
            guards=[read_guard(resource)],
        )(offloaded(ctx.executor, aggregate))
    ]
