"""OpenAPI 3.1 documents generated from the mapping, one per API version.

Written from the mapping rather than from handler signatures, because the
mapping knows what handlers cannot: each field's format, the enum of a code
map, which operators a field takes, and which scope hides it. The result is
committed as ``openapi/<version>.json`` and compared in CI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from legacy_adapters.query.filters import OPERATORS

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import Mapping
    from legacy_adapters.query.resource import BoundField, Resource

__all__ = ("build_openapi",)

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "decimal": {"type": "number"},
    "number": {"type": "number"},
    "date": {"type": "string", "format": "date"},
    "time": {"type": "string", "format": "time"},
    "datetime": {"type": "string", "format": "date-time"},
    "boolean": {"type": "boolean"},
}
_ERRORS = {
    "400": "Invalid parameter; `errors` lists each one",
    "401": "Missing or invalid bearer token",
    "403": "The token lacks the scope or claim needed",
    "406": "None of the Accept media types can be produced",
    "503": "The legacy database is unavailable (see Retry-After)",
    "504": "The legacy database did not answer in time",
}


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def operators_for(field: BoundField) -> list[str]:
    """Operators a field accepts: range only where stored order is API order, like/ilike on text."""
    allowed = []
    for op in OPERATORS:
        if op in ("lt", "lte", "gt", "gte") and not field.rangeable:
            continue
        if op in ("like", "ilike") and not field.matchable:
            continue
        allowed.append(op)
    return allowed


def field_schema(field: BoundField, *, exact: bool = False) -> dict[str, Any]:
    """JSON Schema of a field; ``exact`` leaves out the null an undecodable stored value reads as (keys, inputs)."""
    spec = field.spec
    schema = dict(_TYPES[spec.type])
    codes = field.codec.code_map
    if codes is not None and codes.unmapped != "raw":  # raw serves any stored code
        schema["enum"] = sorted({name for _, name in codes.pairs} | ({codes.default} if codes.default else set()))
    if spec.scale is not None:
        schema["multipleOf"] = float(f"1e-{spec.scale}") if spec.scale else 1
    if spec.length is not None and spec.type == "string" and spec.map is None:
        schema["maxLength"] = spec.length
    # Sentinels read as null, and so does a stored value the transform cannot decode (logged).
    may_be_null = bool(field.codec.sentinels) or spec.nullable
    decoded = spec.transform or spec.date or spec.time or spec.map or spec.scale is not None
    may_be_null = may_be_null or (not exact and bool(decoded))
    if may_be_null:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    description = spec.description or ""
    if spec.scope:
        description = f"{description} Visible only to tokens with scope `{spec.scope}`.".strip()
        schema["x-required-scope"] = spec.scope
    if description:
        schema["description"] = description
    return schema


def _row_schema(resource: Resource) -> dict[str, Any]:
    keys = {f.name for f in resource.key}
    properties: dict[str, Any] = {f.name: field_schema(f, exact=f.name in keys) for f in resource.fields.values()}
    for name, target in resource.relations.items():
        ref = {"$ref": f"#/components/schemas/{_title(target.name)}"}
        many = resource.spec.relations[name].many
        embedded = {"type": "array", "items": ref} if many else {"anyOf": [ref, {"type": "null"}]}
        properties[name] = {**embedded, "description": f"Present when requested with embed={name}."}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if resource.spec.description:
        schema["description"] = resource.spec.description
    return schema


def _security(resource: Resource, scope: str | None) -> list[dict[str, list[str]]]:
    requirement = {"bearerAuth": [scope] if scope else []}
    return [{}, requirement] if resource.spec.anonymous else [requirement]


def _responses(ok: dict[str, Any], *extra: str) -> dict[str, Any]:
    responses = {"200": ok}
    for code in (*_ERRORS, *extra):
        description = _ERRORS.get(code, "Not found" if code == "404" else code)
        responses[code] = {
            "description": description,
            "content": {"application/problem+json": {"schema": _PROBLEM_REF}},
        }
    return dict(sorted(responses.items()))


def _list_parameters(resource: Resource, max_limit: int, default_limit: int) -> list[dict[str, Any]]:
    fields = list(resource.fields.values())
    sortable = [f.name for f in fields if f.sortable]
    params: list[dict[str, Any]] = [
        _query("fields", "Comma list of fields to return (default: all you may see).", {"type": "string"}),
        _query(
            "sort",
            f"Comma list of fields, `-` for descending. Sortable: {', '.join(sortable) or 'none'}.",
            {"type": "string"},
        ),
        _query(
            "limit",
            "Rows per page.",
            {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit},
        ),
        _query(
            "cursor",
            "Opaque position from `next_cursor`; keep the same filters and sort.",
            {"type": "string"},
        ),
        _query(
            "offset",
            "Rows to skip, for page-numbered grids; slower than cursor on deep pages.",
            {"type": "integer", "minimum": 0},
        ),
        _query("count", "`exact` adds the total number of matching rows.", {"type": "string", "enum": ["exact"]}),
    ]
    if resource.relations:
        params.append(
            _query(
                "embed",
                f"Comma list of relations to include: {', '.join(resource.relations)}.",
                {"type": "string"},
            )
        )
    for field in fields:
        base = {k: v for k, v in field_schema(field).items() if k in ("type", "format", "enum")}
        if isinstance(base.get("type"), list):  # a filter value is never null: isnull asks for those rows
            base["type"] = base["type"][0]
        if "enum" in base:
            base["enum"] = [v for v in base["enum"] if v is not None]
        hidden = f" Needs scope `{field.spec.scope}`." if field.spec.scope else ""
        for op in operators_for(field):
            name = field.name if op == "eq" else f"{field.name}[{op}]"
            if op == "in":
                schema: dict[str, Any] = {"type": "string", "description": "comma-separated values; `\\,` is a comma"}
            elif op == "isnull":
                schema = {"type": "boolean"}
            elif op == "like":
                schema = {
                    "type": "string",
                    "description": "case-sensitive; `*` matches any run of characters, `\\*` a star",
                }
            elif op == "ilike":
                schema = {"type": "string", "description": "like, ignoring case (Unicode); `*` matches any run"}
            else:
                schema = base
            params.append(_query(name, f"{field.name} {op}.{hidden}", schema))
    return params


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def build_openapi(mapping: Mapping, version: str, resources: dict[str, Resource]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for one version, deterministic for a given mapping."""
    spec = mapping.versions[version]
    api = mapping.api
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for name, resource in resources.items():
        title = _title(name)
        schemas[title] = _row_schema(resource)
        scope = resource.spec.scopes.read
        ref = {"$ref": f"#/components/schemas/{title}"}
        page = {
            "type": "object",
            "required": ["data", "next_cursor"],
            "properties": {
                "data": {"type": "array", "items": ref},
                "next_cursor": {"type": ["string", "null"]},
                "count": {"type": "integer", "description": "With count=exact."},
            },
        }
        list_ok = {
            "description": "A page of rows, or every row when Accept asks for NDJSON or CSV.",
            "headers": {"Link": {"schema": {"type": "string"}, "description": 'rel="next" when more rows follow'}},
            "content": {
                "application/json": {"schema": page},
                "application/x-ndjson": {"schema": ref},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
        key_names = ",".join(f.name for f in resource.key)
        key_doc = (
            f"The {key_names}."
            if len(resource.key) == 1
            else f"The composite key {key_names}: values joined by commas in that order; "
            "a comma or backslash inside a value is preceded by a backslash."
        )
        get_params = [
            {
                "name": "key",
                "in": "path",
                "required": True,
                "description": key_doc,
                "schema": {"type": "string"},
            },
            _query("fields", "Comma list of fields to return.", {"type": "string"}),
        ]
        if resource.relations:
            get_params.append(_query("embed", f"Relations: {', '.join(resource.relations)}.", {"type": "string"}))
        get_ok = {
            "description": "One row.",
            "headers": {"ETag": {"schema": {"type": "string"}, "description": "Strong validator of the row"}},
            "content": {"application/json": {"schema": ref}},
        }
        scope_note = f" Needs scope `{scope}`." if scope else ""
        filter_note = " Rows are limited to the token's own by a row filter." if resource.spec.row_filter else ""
        paths[f"/{version}/{name}"] = {
            "get": {
                "operationId": f"list_{name}",
                "summary": f"List {name}",
                "description": (resource.spec.description or "") + scope_note + filter_note,
                "tags": [name],
                "parameters": _list_parameters(resource, api.max_limit, api.default_limit),
                "responses": _responses(list_ok),
                "security": _security(resource, scope),
            }
        }
        get_responses = _responses(get_ok, "404")
        get_responses["304"] = {"description": "Not modified (If-None-Match)"}
        paths[f"/{version}/{name}/{{key}}"] = {
            "get": {
                "operationId": f"get_{name}",
                "summary": f"One of {name} by key",
                "description": scope_note.strip() + filter_note,
                "tags": [name],
                "parameters": get_params,
                "responses": dict(sorted(get_responses.items())),
                "security": _security(resource, scope),
            }
        }
        if resource.spec.writable or resource.spec.delete is not None or resource.spec.actions:
            _add_writes(paths, schemas, version, resource, api.max_bulk)
    schemas["Problem"] = {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "request_id": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
    }
    info: dict[str, Any] = {"title": f"{api.title} {version}", "version": version}
    if spec.description:
        info["description"] = spec.description
    document: dict[str, Any] = {"openapi": "3.1.0", "info": info}
    if api.server_url:
        document["servers"] = [{"url": api.server_url}]
    document["paths"] = paths
    document["components"] = {
        "schemas": schemas,
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    }
    return document


_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retry-safe: the first response to a key is replayed for 24 h; reusing it for another body is 422.",
    "schema": {"type": "string", "maxLength": 255},
}
_IF_MATCH_HEADER = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "The ETag from your last read; 412 when the row changed since (checked atomically).",
    "schema": {"type": "string"},
}
_WRITE_ERRORS = {
    "409": "Conflicts with existing data (duplicate key, constraint)",
    "412": "The row changed since the If-Match ETag was issued",
    "413": "More rows than the bulk limit",
    "422": "Invalid values; `errors` lists each field",
    "428": "If-Match is required by this API",
}


def _write_schema(resource: Resource, *, partial: bool) -> dict[str, Any]:
    keys = {f.name for f in resource.key}
    properties = {}
    required = []
    for field in resource.fields.values():
        if field.spec.read_only or (partial and field.name in keys):
            continue
        properties[field.name] = field_schema(field, exact=True)
        absent_ok = (
            bool(field.codec.sentinels)
            or field.spec.nullable
            or all(c in resource.spec.defaults for c in field.codec.columns)
        )
        if not partial and (field.spec.required or not absent_ok):
            required.append(field.name)
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _write_responses(ok_code: str, ok: dict[str, Any], *codes: str) -> dict[str, Any]:
    responses: dict[str, Any] = {ok_code: ok}
    for code in ("400", "401", "403", *codes, "503", "504"):
        description = _WRITE_ERRORS.get(code) or _ERRORS.get(code) or ("Not found" if code == "404" else code)
        responses[code] = {
            "description": description,
            "content": {"application/problem+json": {"schema": _PROBLEM_REF}},
        }
    return dict(sorted(responses.items()))


def _add_writes(
    paths: dict[str, Any], schemas: dict[str, Any], version: str, resource: Resource, max_bulk: int
) -> None:
    name, spec = resource.name, resource.spec
    title = _title(name)
    ref = {"$ref": f"#/components/schemas/{title}"}
    write_scope = spec.scopes.write
    security = [{"bearerAuth": [write_scope] if write_scope else []}]
    key_param = paths[f"/{version}/{name}/{{key}}"]["get"]["parameters"][0]
    row_ok = {
        "description": "The row as stored.",
        "headers": {"ETag": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": ref}},
    }
    if spec.writable:
        schemas[f"{title}Create"] = _write_schema(resource, partial=False)
        schemas[f"{title}Patch"] = _write_schema(resource, partial=True)
        create_ref = {"$ref": f"#/components/schemas/{title}Create"}
        paths[f"/{version}/{name}"]["post"] = {
            "operationId": f"create_{name}",
            "summary": f"Create one of {name}, or up to {max_bulk} in one transaction",
            "description": "An array creates all rows or none; with `partial=true` each row succeeds or fails alone.",
            "tags": [name],
            "parameters": [
                _IDEMPOTENCY_HEADER,
                _query(
                    "partial", "With an array: commit the valid rows, report each row's result.", {"type": "boolean"}
                ),
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [create_ref, {"type": "array", "items": create_ref, "maxItems": max_bulk}]}
                    }
                },
            },
            "responses": _write_responses("201", {**row_ok, "description": "Created."}, "409", "413", "422"),
            "security": security,
        }
        paths[f"/{version}/{name}/{{key}}"]["patch"] = {
            "operationId": f"update_{name}",
            "summary": f"Change named fields of one of {name}",
            "description": "Only the fields given are written; other columns keep their stored values.",
            "tags": [name],
            "parameters": [key_param, _IF_MATCH_HEADER],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{title}Patch"}}},
            },
            "responses": _write_responses("200", row_ok, "404", "409", "412", "422", "428"),
            "security": security,
        }
    if spec.delete is not None:
        how = f"Sets {spec.delete.column} (a soft delete)." if spec.delete.column else "Removes the row."
        paths[f"/{version}/{name}/{{key}}"]["delete"] = {
            "operationId": f"delete_{name}",
            "summary": f"Delete one of {name}",
            "description": how,
            "tags": [name],
            "parameters": [key_param, _IF_MATCH_HEADER],
            "responses": _write_responses("204", {"description": "Deleted."}, "404", "412", "428"),
            "security": security,
        }
    for action_name, action in spec.actions.items():
        scope = action.scope or write_scope
        body_params = sorted(s.removeprefix("body.") for s in action.params.values() if s.startswith("body."))
        operation: dict[str, Any] = {
            "operationId": f"{name}_{action_name}",
            "summary": action.description or f"Run {action_name} on one of {name}",
            "tags": [name],
            "parameters": [key_param, _IDEMPOTENCY_HEADER],
            "responses": _write_responses(
                "200",
                {
                    "description": "The action's result (rows it returned, or rows affected) and the row after it.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"action": {"type": "string"}, "result": {"type": "object"}, "data": ref},
                            }
                        }
                    },
                },
                "404",
                "409",
                "422",
            ),
            "security": [{"bearerAuth": [scope] if scope else []}],
        }
        if body_params:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {
                    "type": "object", "required": body_params, "properties": {p: {} for p in body_params}}}},
            }  # fmt: skip
        paths[f"/{version}/{name}/{{key}}/actions/{action_name}"] = {"post": operation}
