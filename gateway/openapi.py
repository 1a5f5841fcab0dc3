"""OpenAPI 3.1 documents generated from the mapping, one per API version.

Written from the mapping rather than from handler signatures, because the
mapping knows what handlers cannot: each field's format, the enum of a code
map, which operators a field takes, and which scope hides it. The result is
committed as ``openapi/<version>.json`` and compared in CI.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gateway.console.openapi import admin_paths, admin_schemas
from gateway.params import MAX_IN_VALUES
from gateway.protection import EXEMPT_PATHS
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
    "404": "Not found, or not visible to this token",
    "406": "None of the Accept media types can be produced",
    "409": "Conflicts with existing data (duplicate key, constraint), or the same Idempotency-Key is still running",
    "412": "The row changed since the If-Match ETag was issued",
    "413": "The body is too large, or holds more rows than the bulk limit",
    "415": "The body is not `application/json`",
    "422": "Invalid values; `errors` lists each field",
    "428": "If-Match is required by this API",
    "429": "Too many requests (a rate limit, or this caller's exports already running): retry after Retry-After",
    "503": "The legacy database is unavailable (see Retry-After)",
    "504": "The legacy database did not answer in time",
}
_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {"description": "Strong validator of the row", "schema": {"type": "string", "pattern": '^"[^"]*"$'}},
    "Location": {"description": "Path of the created row", "schema": {"type": "string"}},
    "Link": {"description": '`<next page>; rel="next"` when more rows follow', "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer", "minimum": 0}},
    "WWW-Authenticate": {"description": "The Bearer challenge (RFC 6750)", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response to an earlier request with the same Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
_RATE_LIMIT_HEADERS: dict[str, dict[str, Any]] = {
    "RateLimit-Policy": {"description": "The limit and its window: `N; w=seconds`", "schema": {"type": "string"}},
    "RateLimit-Limit": {"description": "Requests allowed in the window", "schema": {"type": "integer"}},
    "RateLimit-Remaining": {"description": "Requests left in the window", "schema": {"type": "integer", "minimum": 0}},
    "RateLimit-Reset": {"description": "Seconds until the window ends", "schema": {"type": "integer"}},
}
"""The IETF draft's headers Litestar's limiter sends (gateway/protection.py): on a 429 of a rate limit."""
_ERROR_HEADERS = {
    "401": ("WWW-Authenticate",),
    "403": ("WWW-Authenticate",),
    "429": ("Retry-After",),
    "503": ("Retry-After",),
}


def _header_refs(*names: str) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _problem_response(code: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _ERRORS[code],
        "content": {"application/problem+json": {"schema": _PROBLEM_REF}},
    }
    if code in _ERROR_HEADERS:
        response["headers"] = _header_refs(*_ERROR_HEADERS[code])
    return response


def _responses(success: dict[str, dict[str, Any]], *errors: str) -> dict[str, Any]:
    """Success responses plus the problem+json answer of every error code the operation can give."""
    responses = dict(success)
    for code in (*errors, "401", "503", "504"):
        responses[code] = _problem_response(code)
    return dict(sorted(responses.items()))


# Transforms that keep whole seconds (HHMMSS): the wire form has no fraction, and a fraction is refused (422).
_TIME = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
_DATE = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_WHOLE_SECONDS = {
    "date_time": {"datetime": f"^{_DATE}T{_TIME}(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"},
    "hhmmss": {"time": f"^{_TIME}$"},
}


def _scale_note(scale: int | None) -> str:
    if scale is None:
        return ""
    places = "no decimal places" if scale == 0 else f"at most {scale} decimal place{'s' if scale > 1 else ''}"
    return f"Stored with {places}; more are refused (422)."


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def operators_for(field: BoundField) -> list[str]:
    """Operators a field accepts: range only where stored order is API order, like/ilike on text."""
    allowed: list[str] = []
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
    if spec.as_string:  # a decimal as text: exact on every client, never a binary float
        places = field.codec.places
        fraction = "" if places == 0 else f"(\\.[0-9]{{1,{places}}})?" if places else "(\\.[0-9]+)?"
        schema = {"type": "string", "format": "decimal", "pattern": f"^-?[0-9]+{fraction}$"}
    codes = field.codec.code_map
    if codes is not None and codes.unmapped != "raw":  # raw serves any stored code
        schema["enum"] = sorted({name for _, name in codes.pairs} | ({codes.default} if codes.default else set()))
    # Not ``multipleOf``: floating-point validators reject valid amounts (0.07 is not 7 * 0.01 in binary).
    scale_note = _scale_note(spec.scale)
    if spec.scale is not None:
        schema["x-scale"] = spec.scale  # machine-readable for clients and test generators
    if spec.length is not None and spec.type == "string" and spec.map is None:
        schema["maxLength"] = spec.length
    if spec.type == "string" and spec.map is None and "" in field.codec.sentinels:
        schema["minLength"] = 1  # '' is stored as the "none" sentinel: it reads back as null, so it is refused
    if spec.transform in _WHOLE_SECONDS and spec.type in _WHOLE_SECONDS[spec.transform]:
        schema["pattern"] = _WHOLE_SECONDS[spec.transform][spec.type]
        if spec.type == "time":  # naive HH:MM:SS; JSON Schema's "time" format demands an offset
            del schema["format"]
    # Sentinels read as null, and so does a stored value the transform cannot decode (logged).
    may_be_null = bool(field.codec.sentinels) or spec.nullable
    decoded = spec.transform or spec.date or spec.time or spec.map or spec.scale is not None
    may_be_null = may_be_null or (not exact and bool(decoded))
    if may_be_null:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    description = f"{spec.description or ''} {scale_note}".strip()
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
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if resource.spec.description:
        schema["description"] = resource.spec.description
    return schema


def _security(resource: Resource, scope: str | None) -> list[dict[str, list[str]]]:
    requirement = {"bearerAuth": [scope] if scope else []}
    return [{}, requirement] if resource.spec.anonymous else [requirement]


def _comma_list(items: dict[str, Any], **bounds: Any) -> dict[str, Any]:
    """A comma-separated list in the query string (``a,b,c``): ``style: form`` without explode."""
    return {"type": "array", "items": items, **bounds}


def _control_parameters(resource: Resource, *, listing: bool) -> list[dict[str, Any]]:
    """``fields`` and ``embed`` (and for a list ``sort``), each constrained to exactly the names the server takes."""
    fields = list(resource.fields)
    params = [
        _query(
            "fields",
            "Comma list of fields to return (default: all you may see; a field behind a scope you lack is a 400).",
            _comma_list({"type": "string", "enum": fields}),
        )
    ]
    if listing:
        sortable = [f.name for f in resource.fields.values() if f.sortable]
        directions = [name for field in sortable for name in (field, f"-{field}")]
        sort_items = {"type": "string", "enum": directions} if directions else {"type": "string", "maxLength": 0}
        params.append(
            _query(
                "sort",
                f"Comma list of fields, `-` for descending. Sortable: {', '.join(sortable) or 'none'}.",
                _comma_list(sort_items, uniqueItems=True, maxItems=max(len(sortable), 1)),
            )
        )
    if resource.relations:
        params.append(
            _query(
                "embed",
                f"Comma list of relations to include: {', '.join(resource.relations)}.",
                _comma_list({"type": "string", "enum": list(resource.relations)}),
            )
        )
    return params


def _filter_value_schema(field: BoundField) -> dict[str, Any]:
    """The schema of one filter operand: the field's type, never null (``isnull`` asks for those rows)."""
    base = {k: v for k, v in field_schema(field).items() if k in ("type", "format", "enum", "maxLength", "pattern")}
    if isinstance(base.get("type"), list):
        base["type"] = base["type"][0]
    if "enum" in base:
        base["enum"] = [v for v in base["enum"] if v is not None]
    return base


def _list_parameters(resource: Resource, max_limit: int, default_limit: int) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        *_control_parameters(resource, listing=True),
        _query(
            "limit",
            "Rows per page; in an NDJSON or CSV export, at most this many rows (without it, every matching row).",
            {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit},
        ),
        _query(
            "cursor",
            "Opaque position from `next_cursor`; keep the same filters and sort. Not with `offset`.",
            {"type": "string"},
        ),
        _query(
            "offset",
            "Rows to skip, for page-numbered grids; slower than cursor on deep pages. Not with `cursor`.",
            {"type": "integer", "minimum": 0},
        ),
        _query("count", "`exact` adds the total number of matching rows.", {"type": "string", "enum": ["exact"]}),
        *_filter_parameters(resource),
    ]
    return params


def _filter_parameters(resource: Resource) -> list[dict[str, Any]]:
    """``field[op]=value`` for every field and operator it takes (lists and aggregates alike)."""
    params: list[dict[str, Any]] = []
    for field in resource.fields.values():
        base = _filter_value_schema(field)
        hidden = f" Needs scope `{field.spec.scope}`." if field.spec.scope else ""
        for op in operators_for(field):
            name = field.name if op == "eq" else f"{field.name}[{op}]"
            if op == "in":
                # A comma inside a value is written `\\,` (and a backslash `\\\\`).
                schema: dict[str, Any] = _comma_list(base, minItems=1, maxItems=MAX_IN_VALUES)
                schema["description"] = "comma-separated values; `\\,` is a comma"
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


def _key_parameter(resource: Resource) -> dict[str, Any]:
    names = ",".join(f.name for f in resource.key)
    if len(resource.key) == 1:
        field = resource.key[0]
        schema = {k: v for k, v in field_schema(field, exact=True).items() if k in ("type", "format", "maxLength")}
        if schema.get("type") == "string" and "format" not in schema:
            schema["minLength"] = 1
        description = f"The {names}."
    else:
        parts = ",".join(_key_part_pattern(f) for f in resource.key)
        schema = {"type": "string", "pattern": f"^{parts}$"}
        description = (
            f"The composite key {names}: values joined by commas in that order; "
            "a comma or backslash inside a value is preceded by a backslash."
        )
    return {"name": "key", "in": "path", "required": True, "description": description, "schema": schema}


def _key_part_pattern(field: BoundField) -> str:
    """One component of a composite key, as the server splits it (``\\,`` is a comma inside a value)."""
    match field.spec.type:
        case "integer":
            return "-?[0-9]+"
        case "date":
            return "[0-9]{4}-[0-9]{2}-[0-9]{2}"
        case "boolean":
            return "(?:true|false)"
    length = field.spec.length if field.spec.type == "string" and field.spec.map is None else None
    return r"(?:[^,\\]|\\[\s\S])" + (f"{{1,{length}}}" if length else "+")


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    param = {"name": name, "in": "query", "required": False, "description": description, "schema": schema}
    if schema.get("type") == "array":  # a=1,2,3: one parameter, values joined by commas
        param |= {"style": "form", "explode": False}
    return param


def _lifecycle_note(deprecated: bool | str, sunset: str | None, successor: str | None) -> str:
    """The version's retirement in words, as its responses announce it in headers."""
    parts = []
    if isinstance(deprecated, str):
        parts.append(f"Deprecated since {deprecated} (every response carries a `Deprecation` header).")
    if sunset:
        parts.append(f"It may be removed after {sunset} (`Sunset`).")
    if successor:
        parts.append(f'Its successor is {successor} (`Link: <...>; rel="successor-version"`).')
    return " ".join(parts)


def build_openapi(mapping: Mapping, version: str, resources: dict[str, Resource]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for one version, deterministic for a given mapping."""
    from gateway.openapi_aggregates import aggregate_path  # it builds on this module's parts

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
            "description": (
                "A page of rows, or every matching row (the first `limit` when given)"
                " when Accept asks for NDJSON or CSV."
            ),
            "headers": _header_refs("Link"),
            "content": {
                "application/json": {"schema": page},
                "application/x-ndjson": {"schema": ref},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
        get_params = [
            _key_parameter(resource),
            *_control_parameters(resource, listing=False),
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "ETags you hold; 304 without a body when the row still matches one.",
                "schema": {"type": "string"},
            },
        ]
        get_ok = {
            "description": "One row.",
            "headers": _header_refs("ETag"),
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
                # 429: a caller past its running exports (api.exports_per_subject), rate limits or not.
                "responses": _responses({"200": list_ok}, "400", "403", "406", "429"),
                "security": _security(resource, scope),
            }
        }
        not_modified = {
            "description": "Not modified: the row still matches If-None-Match",
            "headers": _header_refs("ETag"),
        }
        get_responses = _responses({"200": get_ok, "304": not_modified}, "400", "403", "404", "406")
        paths[f"/{version}/{name}/{{key}}"] = {
            "get": {
                "operationId": f"get_{name}",
                "summary": f"One of {name} by key",
                "description": scope_note.strip() + filter_note,
                "tags": [name],
                "parameters": get_params,
                "responses": get_responses,
                "security": _security(resource, scope),
            }
        }
        paths[f"/{version}/{name}/aggregate"] = aggregate_path(resource, api.max_limit, api.default_limit)
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
            "errors": {"type": "array", "items": {"type": "object"}, "maxItems": 50},
            "errors_not_listed": {"type": "integer", "description": "How many more errors there were past 50."},
        },
    }
    info: dict[str, Any] = {"title": f"{api.title} {version}", "version": version}
    lifecycle = _lifecycle_note(spec.deprecated, spec.sunset, spec.successor)
    if spec.description or lifecycle:
        info["description"] = " ".join(part for part in (spec.description, lifecycle) if part)
    if spec.deprecated_at is not None:
        for operations in paths.values():  # Swagger UI strikes deprecated operations through
            for operation in operations.values():
                operation["deprecated"] = True
    document: dict[str, Any] = {"openapi": "3.1.0", "info": info}
    if api.server_url:
        document["servers"] = [{"url": api.server_url}]
    # The admin API (the console's) is served beside every version: documented in each document.
    document["paths"] = {**paths, **admin_paths()}
    schemas.update(admin_schemas())
    headers = _HEADERS
    if api.rate_limit is not None and (api.rate_limit.per_ip or api.rate_limit.per_subject):
        headers = {**_HEADERS, **_RATE_LIMIT_HEADERS}
        _add_rate_limited(document["paths"])
    document["components"] = {
        "schemas": schemas,
        "headers": headers,
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    }
    return document


def _add_rate_limited(paths: dict[str, Any]) -> None:
    """Every operation the limiter counts may answer 429, with the limiter's headers."""
    limited = _problem_response("429")
    limited["headers"] = _header_refs("Retry-After", *_RATE_LIMIT_HEADERS)
    for path, operations in paths.items():
        if any(re.match(pattern, path) for pattern in EXEMPT_PATHS):
            continue
        for operation in operations.values():
            operation["responses"] = dict(sorted({**operation["responses"], "429": limited}.items()))


_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retry-safe: the first response to a key is replayed for 24 h; reusing it for another body is 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_IF_MATCH_HEADER = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "The ETag from your last read; 412 when the row changed since (checked atomically).",
    "schema": {"type": "string"},
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


def _json_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


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
        "headers": _header_refs("ETag"),
        "content": {"application/json": {"schema": ref}},
    }
    if spec.writable:
        schemas[f"{title}Create"] = _write_schema(resource, partial=False)
        schemas[f"{title}Patch"] = _write_schema(resource, partial=True)
        create_ref = {"$ref": f"#/components/schemas/{title}Create"}
        created = {
            "description": "Created: the row (with ETag and Location), or for an array `data` with every row.",
            "headers": _header_refs("ETag", "Location", "Idempotent-Replayed"),
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            ref,
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["data"],
                                "properties": {"data": {"type": "array", "items": ref, "maxItems": max_bulk}},
                            },
                        ]
                    }
                }
            },
        }
        results = {
            "description": "With `partial=true` and an array: each row's own outcome, in request order.",
            "headers": _header_refs("Idempotent-Replayed"),
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["results"],
                        "properties": {
                            "results": {
                                "type": "array",
                                "maxItems": max_bulk,
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["index", "status"],
                                    "properties": {
                                        "index": {"type": "integer", "minimum": 0},
                                        "status": {"type": "integer", "description": "201, or the row's error"},
                                        "data": ref,
                                        "problem": _PROBLEM_REF,
                                    },
                                },
                            }
                        },
                    }
                }
            },
        }
        paths[f"/{version}/{name}"]["post"] = {
            "operationId": f"create_{name}",
            "summary": f"Create one of {name}, or up to {max_bulk} in one transaction",
            "description": "An array creates all rows or none (201); with `partial=true` each row succeeds or "
            "fails alone and the answer is 200 with every row's result.",
            "tags": [name],
            "parameters": [
                _IDEMPOTENCY_HEADER,
                _query(
                    "partial", "With an array: commit the valid rows, report each row's result.", {"type": "boolean"}
                ),
            ],
            "requestBody": _json_body(
                {"oneOf": [create_ref, {"type": "array", "items": create_ref, "minItems": 1, "maxItems": max_bulk}]}
            ),
            "responses": _responses({"200": results, "201": created}, "400", "403", "409", "413", "415", "422"),
            "security": security,
        }
        paths[f"/{version}/{name}/{{key}}"]["patch"] = {
            "operationId": f"update_{name}",
            "summary": f"Change named fields of one of {name}",
            "description": "Only the fields given are written; other columns keep their stored values.",
            "tags": [name],
            "parameters": [key_param, _IF_MATCH_HEADER],
            "requestBody": _json_body({"$ref": f"#/components/schemas/{title}Patch"}),
            "responses": _responses({"200": row_ok}, "400", "403", "404", "409", "412", "413", "415", "422", "428"),
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
            "responses": _responses({"204": {"description": "Deleted."}}, "400", "403", "404", "409", "412", "428"),
            "security": security,
        }
    for action_name, action in spec.actions.items():
        scope = action.scope or write_scope
        body_params = sorted(s.removeprefix("body.") for s in action.params.values() if s.startswith("body."))
        action_ok = {
            "description": "The action's result (rows it returned, or rows affected) and the row after it.",
            "headers": _header_refs("Idempotent-Replayed"),
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["action", "result", "data"],
                        "properties": {
                            "action": {"type": "string", "enum": [action_name]},
                            "result": {"type": "object"},
                            "data": {"anyOf": [ref, {"type": "null"}]},
                        },
                    }
                }
            },
        }
        operation: dict[str, Any] = {
            "operationId": f"{name}_{action_name}",
            "summary": action.description or f"Run {action_name} on one of {name}",
            "tags": [name],
            "parameters": [key_param, _IDEMPOTENCY_HEADER],
            "responses": _responses({"200": action_ok}, "400", "403", "404", "409", "413", "415", "422"),
            "security": [{"bearerAuth": [scope] if scope else []}],
        }
        properties: dict[str, Any] = {p: {} for p in body_params}
        body_schema: dict[str, Any] = {"type": "object", "properties": properties}
        if body_params:
            body_schema["required"] = body_params
        # Without body parameters the body is optional: nothing, or an object the action ignores.
        operation["requestBody"] = _json_body(body_schema, required=bool(body_params))
        paths[f"/{version}/{name}/{{key}}/actions/{action_name}"] = {"post": operation}
