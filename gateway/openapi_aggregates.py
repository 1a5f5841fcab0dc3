"""The OpenAPI description of ``GET /{version}/{resource}/aggregate``, from what each field allows.

Which fields may be grouped (and by which date buckets), summed, averaged or taken the
min/max of is decided by ``legacy_adapters.query.served`` — the same code the server
runs — so the document lists exactly the names the server takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.openapi import _comma_list, _filter_parameters, _query, _responses, _security, field_schema
from legacy_adapters.query.aggregate import AVG_EXTRA_PLACES, FUNCTIONS
from legacy_adapters.query.served import BUCKETS, bucket, served

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField, Resource
    from legacy_adapters.query.served import Served

__all__ = ("aggregate_path",)

_HAVING_OPS = ("eq", "ne", "lt", "lte", "gt", "gte")
_BUCKET_SCHEMAS: dict[str, dict[str, Any]] = {
    "year": {"type": ["integer", "null"]},
    "month": {"type": ["string", "null"], "pattern": "^[0-9]{4}-[0-9]{2}$"},
    "week": {"type": ["string", "null"], "format": "date", "description": "The Monday of the ISO week."},
    "day": {"type": ["string", "null"], "format": "date"},
}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in schema.items() if k in ("type", "format", "enum", "description")}
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def _abilities(resource: Resource) -> tuple[dict[str, dict[str, Any]], dict[str, list[tuple[BoundField, Served]]]]:
    """Group names with their value schemas, and per function the fields it takes."""
    groups: dict[str, dict[str, Any]] = {}
    functions: dict[str, list[tuple[BoundField, Served]]] = {f: [] for f in FUNCTIONS}
    for field in resource.fields.values():
        value = served(field)
        if not isinstance(value, str):
            groups[field.name] = _nullable(field_schema(field))
            functions["count_distinct"].append((field, value))
            if value.summable:
                functions["sum"].append((field, value))
                functions["avg"].append((field, value))
            if value.ordered:
                functions["min"].append((field, value))
                functions["max"].append((field, value))
        for part in BUCKETS:
            if not isinstance(bucket(field, part), str):
                groups[f"{field.name}:{part}"] = _BUCKET_SCHEMAS[part]
    return groups, functions


def aggregate_path(resource: Resource, max_limit: int, default_limit: int) -> dict[str, Any]:
    """The path item of one resource's aggregate route."""
    groups, functions = _abilities(resource)
    params = [
        _query(
            "group_by",
            "Comma list of groups: a field, or a date as `field:year|month|week|day`.",
            _comma_list({"type": "string", "enum": list(groups)}, uniqueItems=True),
        )
    ]
    metrics: dict[str, dict[str, Any]] = {"count": {"type": "integer", "minimum": 0}}
    results: dict[str, Any] = {"count": {"type": "integer", "minimum": 0, "description": "Rows in the group."}}
    for function, fields in functions.items():
        if not fields:
            continue
        params.append(
            _query(
                function,
                f"Comma list of fields to take the {function} of.",
                _comma_list({"type": "string", "enum": [f.name for f, _ in fields]}),
            )
        )
        values: dict[str, Any] = {}
        for field, how in fields:
            if function == "count_distinct":
                value: dict[str, Any] = {"type": "integer", "minimum": 0}
            elif function == "avg":
                value = {
                    "type": ["string" if how.as_text else "number", "null"],
                    "description": f"Rounded to the field's places + {AVG_EXTRA_PLACES}.",
                }
            else:
                value = _nullable(field_schema(field))
            values[field.name] = value
            metrics[f"{function}.{field.name}"] = value
        results[function] = {"type": "object", "additionalProperties": False, "properties": values}
    sortable = [*groups, *metrics]
    params.append(
        _query(
            "sort",
            "Comma list of groups or aggregates (`count`, `sum.quantity`), `-` for descending; the groups follow.",
            _comma_list({"type": "string", "enum": [n for name in sortable for n in (name, f"-{name}")]}),
        )
    )
    params.append(
        _query(
            "limit",
            "Groups per page.",
            {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit},
        )
    )
    params.append(_query("cursor", "Opaque position from `next_cursor`; keep the same parameters.", {"type": "string"}))
    # having.<aggregate>[op] for every aggregate would list hundreds of parameters: the counts are
    # listed, the rest follow the same form (the operation's description says so).
    for op in _HAVING_OPS:
        params.append(
            _query(f"having.count[{op}]", f"Only groups whose row count is {op} the value.", {"type": "integer"})
        )
    params.extend(_filter_parameters(resource))
    group_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "group": {"type": "object", "additionalProperties": False, "properties": groups},
            **results,
        },
        "required": ["count"],
    }
    page = {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {"data": {"type": "array", "items": group_schema}, "next_cursor": {"type": ["string", "null"]}},
    }
    ok = {
        "description": "One page of groups, in sort order then group order (null lowest).",
        "headers": {"Link": {"$ref": "#/components/headers/Link"}},
        "content": {"application/json": {"schema": page}},
    }
    scope = resource.spec.scopes.read
    filtered = " Rows are limited to the token's own by a row filter." if resource.spec.row_filter else ""
    return {
        "get": {
            "operationId": f"aggregate_{resource.name}",
            "summary": f"Group and aggregate {resource.name}",
            "description": (
                "Counts, distinct counts, sums, averages, minimums and maximums over the rows a list with the "
                "same filters would return, computed by the database and answered in API form (decimals with "
                f"their scale, ISO dates, code names).{filtered} `having.<aggregate>[op]=value` keeps the groups "
                "whose aggregate compares so with the value, e.g. `having.sum.quantity[gte]=100` "
                "(with `sum=quantity`); operators eq, ne, lt, lte, gt, gte."
            ),
            "tags": [resource.name],
            "parameters": params,
            "responses": _responses({"200": ok}, "400", "403", "406"),
            "security": _security(resource, scope),
        }
    }
