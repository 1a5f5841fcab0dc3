"""The MCP tools a caller gets, generated from the mapping and the caller's own view of each resource.

One ``describe_resources`` tool, then per readable resource ``<r>_list``, ``<r>_get`` and
``<r>_aggregate``, and where the mapping's ``mcp:`` names them and the token holds the scope,
``<r>_create``, ``<r>_update`` and ``<r>_<action>``. What a tool accepts is the caller's
``Access`` (``gateway/auth/guards.py``): a field hidden behind a scope it lacks is in no
schema, no description and no enum, exactly as the REST API hides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import mcp_types as types

from gateway.auth.guards import authorize_read, authorize_write
from gateway.exceptions import GatewayError
from gateway.openapi import field_schema, operators_for
from legacy_adapters.query.aggregate import FUNCTIONS
from legacy_adapters.query.served import BUCKETS, bucket, served

if TYPE_CHECKING:
    from gateway.auth.guards import Access
    from gateway.auth.principal import Principal
    from gateway.context import GatewayContext
    from legacy_adapters.query.resource import BoundField, Resource

__all__ = ("DESCRIBE", "ToolKind", "ToolSpec", "describe", "tools_for")

DESCRIBE = "describe_resources"
ToolKind = Literal["describe", "list", "get", "aggregate", "create", "update", "action"]
_HAVING_OPS = ("eq", "ne", "lt", "lte", "gt", "gte")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: what it is for and the REST operation it stands for."""

    tool: types.Tool
    kind: ToolKind
    resource: Resource | None = None
    action: str | None = None


def _value(field: BoundField) -> dict[str, Any]:
    schema = {k: v for k, v in field_schema(field).items() if k in ("type", "format", "enum", "description")}
    return schema


def _operand(field: BoundField) -> dict[str, Any]:
    """A filter value: the field's type without null (``isnull`` asks for nulls)."""
    schema = {k: v for k, v in field_schema(field).items() if k in ("type", "format", "enum")}
    if isinstance(schema.get("type"), list):
        schema["type"] = schema["type"][0]
    if "enum" in schema:
        schema["enum"] = [v for v in schema["enum"] if v is not None]
    return schema


def _filters_schema(access: Access) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for field in access.fields.values():
        operand = _operand(field)
        ops: dict[str, Any] = {}
        for op in operators_for(field):
            if op == "in":
                ops[op] = {"type": "array", "items": operand, "minItems": 1}
            elif op == "isnull":
                ops[op] = {"type": "boolean"}
            elif op in ("like", "ilike"):
                ops[op] = {"type": "string", "description": "* matches any run of characters"}
            else:
                ops[op] = operand
        properties[field.name] = {
            "anyOf": [operand, {"type": "object", "properties": ops, "additionalProperties": False}],
            "description": f"equals, or {{operator: value}} with one of: {', '.join(ops)}",
        }
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "description": 'Rows whose fields match, e.g. {"status": "released", "due_date": {"lt": "2026-12-01"}}.',
    }


def _names(values: list[str], description: str) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "string", "enum": values},
        "uniqueItems": True,
        "description": description,
    }


def _key_schema(resource: Resource) -> dict[str, Any]:
    properties = {f.name: _operand(f) for f in resource.key}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        "description": f"The row's key: {', '.join(properties)}.",
    }


def _readable_relations(ctx: GatewayContext, resource: Resource, principal: Principal) -> list[str]:
    return [name for name, target in resource.relations.items() if _access(target, principal) is not None]


def _access(resource: Resource, principal: Principal) -> Access | None:
    try:
        return authorize_read(resource, principal, quiet=True)
    except GatewayError:
        return None


def _abilities(access: Access) -> tuple[list[str], dict[str, list[str]]]:
    groups: list[str] = []
    functions: dict[str, list[str]] = {f: [] for f in FUNCTIONS}
    for field in access.fields.values():
        value = served(field)
        if not isinstance(value, str):
            groups.append(field.name)
            functions["count_distinct"].append(field.name)
            if value.summable:
                functions["sum"].append(field.name)
                functions["avg"].append(field.name)
            if value.ordered:
                functions["min"].append(field.name)
                functions["max"].append(field.name)
        groups.extend(f"{field.name}:{part}" for part in BUCKETS if not isinstance(bucket(field, part), str))
    return groups, functions


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def _read_tools(ctx: GatewayContext, resource: Resource, access: Access, principal: Principal) -> list[ToolSpec]:
    name = resource.name
    api = ctx.mapping.api
    about = resource.spec.description or f"The {name} resource."
    own = " Only the rows this token may see (a row filter applies)." if access.conditions else ""
    fields = list(access.fields)
    sortable = [f.name for f in access.fields.values() if f.sortable]
    relations = _readable_relations(ctx, resource, principal)
    limit = {"type": "integer", "minimum": 1, "maximum": api.max_limit, "default": api.default_limit}
    cursor = {"type": "string", "description": "next_cursor of the previous call, to continue"}
    shape: dict[str, Any] = {"fields": _names(fields, "Fields to return (default: all)")}
    if relations:
        shape["embed"] = _names(relations, "Related rows to include in each row")
    listing = _object(
        {
            "filters": _filters_schema(access),
            "sort": _names([n for s in sortable for n in (s, f"-{s}")], "Sort by these fields; '-' for descending"),
            **shape,
            "limit": limit,
            "cursor": cursor,
        }
    )
    groups, functions = _abilities(access)
    metrics = ["count", *(f"{fn}.{f}" for fn, names in functions.items() for f in names)]
    aggregate = _object(
        {
            "group_by": _names(groups, "Group by fields; dates as field:year, field:month, field:week or field:day"),
            **{fn: _names(names, f"Fields to take the {fn} of") for fn, names in functions.items() if names},
            "filters": _filters_schema(access),
            "having": {
                "type": "object",
                "propertyNames": {"enum": metrics},
                "additionalProperties": {
                    "type": "object",
                    "propertyNames": {"enum": list(_HAVING_OPS)},
                    "additionalProperties": {"type": ["string", "number", "integer"]},
                },
                "description": 'Keep groups whose aggregate compares so, e.g. {"count": {"gt": 5}}; '
                "the aggregate must be requested too.",
            },
            "sort": _names(
                [n for m in [*groups, *metrics] for n in (m, f"-{m}")], "Sort by groups or aggregates ('-': descending)"
            ),
            "limit": limit,
            "cursor": cursor,
        }
    )
    read_only = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
    return [
        ToolSpec(
            types.Tool(
                name=f"{name}_list",
                title=f"List {name}",
                description=f"{about} Lists rows with filters, sort, fields and embeds; pages with a cursor.{own}",
                input_schema=listing,
                annotations=read_only,
            ),
            "list",
            resource,
        ),
        ToolSpec(
            types.Tool(
                name=f"{name}_get",
                title=f"One of {name}",
                description=f"One row of {name} by its key, with its ETag.{own}",
                input_schema=_object({"key": _key_schema(resource), **shape}, ("key",)),
                annotations=read_only,
            ),
            "get",
            resource,
        ),
        ToolSpec(
            types.Tool(
                name=f"{name}_aggregate",
                title=f"Totals of {name}",
                description=(
                    f"Counts, distinct counts, sums, averages, minimums and maximums of {name}, grouped, computed by "
                    f"the database over the rows the filters select.{own}"
                ),
                input_schema=aggregate,
                annotations=read_only,
            ),
            "aggregate",
            resource,
        ),
    ]


def _write_schema(access: Access, resource: Resource, *, partial: bool) -> dict[str, Any]:
    keys = {f.name for f in resource.key}
    properties = {
        f.name: _value(f) for f in access.fields.values() if not f.spec.read_only and not (partial and f.name in keys)
    }
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _write_tools(resource: Resource, principal: Principal) -> list[ToolSpec]:
    spec, name = resource.spec, resource.name
    out: list[ToolSpec] = []
    writes = _write_access(resource, principal, spec.scopes.write)
    if writes is not None and spec.mcp.create:
        out.append(
            ToolSpec(
                types.Tool(
                    name=f"{name}_create",
                    title=f"Create one of {name}",
                    description=f"Create a row of {name}. Values in API form; the row as stored is returned.",
                    input_schema=_object(
                        {
                            "row": _write_schema(writes, resource, partial=False),
                            "idempotency_key": {"type": "string", "description": "Retry-safe: the same key replays"},
                        },
                        ("row",),
                    ),
                    annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=False),
                ),
                "create",
                resource,
            )
        )
    if writes is not None and spec.mcp.update:
        out.append(
            ToolSpec(
                types.Tool(
                    name=f"{name}_update",
                    title=f"Change one of {name}",
                    description=f"Change the given fields of one row of {name}; etag makes it fail if the row changed.",
                    input_schema=_object(
                        {
                            "key": _key_schema(resource),
                            "changes": _write_schema(writes, resource, partial=True),
                            "etag": {
                                "type": "string",
                                "description": "The ETag from a get; refused if the row changed",
                            },
                        },
                        ("key", "changes"),
                    ),
                    annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=True),
                ),
                "update",
                resource,
            )
        )
    for action_name in spec.mcp.actions:
        action = spec.actions[action_name]
        if _write_access(resource, principal, action.scope or spec.scopes.write) is None:
            continue
        body = sorted(s.removeprefix("body.") for s in action.params.values() if s.startswith("body."))
        properties: dict[str, Any] = {"key": _key_schema(resource)}
        if body:
            properties["params"] = _object({p: {} for p in body}, tuple(body))
        properties["idempotency_key"] = {"type": "string", "description": "Retry-safe: the same key replays"}
        out.append(
            ToolSpec(
                types.Tool(
                    name=f"{name}_{action_name}",
                    title=f"{action_name} one of {name}",
                    description=action.description or f"Run the {action_name} action on one row of {name}.",
                    input_schema=_object(properties, ("key", *(("params",) if body else ()))),
                    annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=True),
                ),
                "action",
                resource,
                action_name,
            )
        )
    return out


def _write_access(resource: Resource, principal: Principal, scope: str | None) -> Access | None:
    try:
        return authorize_write(resource, principal, scope)
    except GatewayError:
        return None


def tools_for(ctx: GatewayContext, principal: Principal) -> dict[str, ToolSpec]:
    """Every tool ``principal`` may call, by name (none for a resource it cannot read)."""
    tools: dict[str, ToolSpec] = {}
    for resource in ctx.versions[ctx.mapping.mcp_version].values():
        if not resource.spec.mcp.tools:
            continue
        access = _access(resource, principal)
        if access is None:
            continue
        for spec in (*_read_tools(ctx, resource, access, principal), *_write_tools(resource, principal)):
            tools[spec.tool.name] = spec
    if tools:
        describe_tool = types.Tool(
            name=DESCRIBE,
            title="Describe the resources",
            description=(
                "What each resource this token may read holds: fields with types, formats, code names and "
                "descriptions, relations, which filters and aggregates each field allows, and its tools. Call it first."
            ),
            input_schema=_object({}),
            annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
        )
        tools = {DESCRIBE: ToolSpec(describe_tool, "describe"), **tools}
    return tools


def describe(ctx: GatewayContext, principal: Principal, tools: dict[str, ToolSpec]) -> dict[str, Any]:
    """The caller's view of every resource it may read, in plain data."""
    resources: dict[str, Any] = {}
    for spec in tools.values():
        resource = spec.resource
        if resource is None or resource.name in resources:
            continue
        access = _access(resource, principal)
        if access is None:
            continue
        groups, functions = _abilities(access)
        fields: dict[str, Any] = {}
        for field in access.fields.values():
            schema = field_schema(field)
            entry: dict[str, Any] = {k: schema[k] for k in ("type", "format", "enum", "description") if k in schema}
            entry["filters"] = operators_for(field)
            entry["sortable"] = field.sortable
            entry["group_by"] = [g for g in groups if g == field.name or g.startswith(f"{field.name}:")]
            entry["aggregates"] = [fn for fn, names in functions.items() if field.name in names]
            fields[field.name] = entry
        resources[resource.name] = {
            "description": resource.spec.description,
            "key": [f.name for f in resource.key],
            "row_filtered": bool(access.conditions),
            "fields": fields,
            "relations": {
                name: {"resource": target.name, "many": resource.spec.relations[name].many}
                for name, target in resource.relations.items()
                if name in _readable_relations(ctx, resource, principal)
            },
            "tools": [n for n, t in tools.items() if t.resource is resource],
        }
    return {"version": ctx.mapping.mcp_version, "resources": resources}
