"""A tool call becomes the REST request it stands for, served by the same app in-process.

No tool has a code path of its own: ``jobs_list`` with ``{"filters": {"status": "released"}}``
is ``GET /v1/jobs?status=released`` through the app's middleware, authentication, guards,
parameter checks, row filters, field hiding, statement deadlines, rate limits, idempotency and
audit, with the caller's own bearer token. The answer's JSON becomes the tool's structured
content, a problem's plain sentences its error. A write is audited as coming from the tool
(``VIA``), which only an in-process call can set: it travels in the ASGI scope, not a header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

import msgspec

from gateway.exceptions import BadRequest

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message

    from gateway.mcp.tools import ToolSpec
    from legacy_adapters.query.resource import Resource

__all__ = ("VIA", "Caller", "Reply", "RestCall", "rest_call", "send")

VIA = "bridgehead.via"
"""ASGI scope state naming the tool a request was made for (audited with the write)."""
MAX_ARGUMENT_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class Caller:
    """Who called a tool, as the REST request made for it will present them."""

    authorization: str | None
    client: tuple[str, int] = ("127.0.0.1", 0)
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class RestCall:
    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal | str):
        return str(value)
    raise BadRequest(f"{where}: expected a single value, got {type(value).__name__}", errors=[{"parameter": where}])


def _escaped(value: Any, where: str) -> str:
    return _text(value, where).replace("\\", "\\\\").replace(",", "\\,")


def _filters(raw: Any) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise BadRequest("filters must be an object of field: value", errors=[{"parameter": "filters"}])
    query: list[tuple[str, str]] = []
    for name, condition in raw.items():
        if isinstance(condition, dict):
            for op, value in condition.items():
                where = f"{name}[{op}]"
                if isinstance(value, list):
                    query.append((where, ",".join(_escaped(v, where) for v in value)))
                else:
                    query.append((where, _text(value, where)))
        else:
            query.append((str(name), _text(condition, str(name))))
    return query


def _names(raw: Any, parameter: str) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise BadRequest(f"{parameter} must be a list of names", errors=[{"parameter": parameter}])
    return [(parameter, ",".join(raw))] if raw else []


def _scalar(arguments: dict[str, Any], name: str) -> list[tuple[str, str]]:
    value = arguments.get(name)
    return [] if value is None else [(name, _text(value, name))]


def _key(resource: Resource, raw: Any) -> str:
    if not isinstance(raw, dict):
        if len(resource.key) == 1 and isinstance(raw, str | int):
            raw = {resource.key[0].name: raw}
        else:
            raise BadRequest("key must be an object of the key fields", errors=[{"parameter": "key"}])
    parts = []
    for key_field in resource.key:
        if key_field.name not in raw:
            raise BadRequest(f"key needs {key_field.name}", errors=[{"parameter": "key"}])
        parts.append(_text(raw[key_field.name], "key"))
    text = ",".join(p.replace("\\", "\\\\").replace(",", "\\,") for p in parts) if len(parts) > 1 else parts[0]
    return quote(text, safe="")


def rest_call(spec: ToolSpec, arguments: dict[str, Any]) -> RestCall:
    """The REST request a tool call stands for; ``BadRequest`` for arguments of the wrong shape."""
    resource = spec.resource
    assert resource is not None
    base = f"/{resource.version}/{resource.name}"
    shape = [*_names(arguments.get("fields"), "fields"), *_names(arguments.get("embed"), "embed")]
    paging = [*_scalar(arguments, "limit"), *_scalar(arguments, "cursor")]
    headers: dict[str, str] = {}
    if arguments.get("idempotency_key") is not None:
        headers["Idempotency-Key"] = _text(arguments["idempotency_key"], "idempotency_key")
    match spec.kind:
        case "list":
            query = [*_filters(arguments.get("filters")), *_names(arguments.get("sort"), "sort"), *shape, *paging]
            return RestCall("GET", base, query)
        case "get":
            return RestCall("GET", f"{base}/{_key(resource, arguments.get('key'))}", shape)
        case "aggregate":
            query = [*_filters(arguments.get("filters")), *_names(arguments.get("group_by"), "group_by")]
            for function in ("count_distinct", "sum", "avg", "min", "max"):
                query.extend(_names(arguments.get(function), function))
            having = arguments.get("having") or {}
            if not isinstance(having, dict):
                raise BadRequest("having must be an object of aggregate: {op: value}", errors=[{"parameter": "having"}])
            for metric, comparisons in having.items():
                if not isinstance(comparisons, dict):
                    raise BadRequest(
                        f"having.{metric} must be an object of op: value", errors=[{"parameter": "having"}]
                    )
                for op, value in comparisons.items():
                    query.append((f"having.{metric}[{op}]", _text(value, f"having.{metric}")))
            query.extend([*_names(arguments.get("sort"), "sort"), *paging])
            return RestCall("GET", f"{base}/aggregate", query)
        case "create":
            return RestCall("POST", base, body=arguments.get("row"), headers=headers)
        case "update":
            if arguments.get("etag") is not None:
                headers["If-Match"] = _text(arguments["etag"], "etag")
            path = f"{base}/{_key(resource, arguments.get('key'))}"
            return RestCall("PATCH", path, body=arguments.get("changes"), headers=headers)
        case "action":
            path = f"{base}/{_key(resource, arguments.get('key'))}/actions/{spec.action}"
            return RestCall("POST", path, body=arguments.get("params") or {}, headers=headers)
    raise AssertionError(spec.kind)


_encoder = msgspec.json.Encoder(decimal_format="number")


async def send(app: ASGIApp, call: RestCall, caller: Caller, tool: str) -> Reply:
    """Serve ``call`` with ``app`` as if ``caller`` had sent it, and collect the whole answer."""
    body = b"" if call.body is None else _encoder.encode(call.body)
    headers = {"accept": "application/json", **{k.lower(): v for k, v in call.headers.items()}}
    if call.body is not None:
        headers["content-type"] = "application/json"
    if caller.authorization:
        headers["authorization"] = caller.authorization
    if caller.request_id:
        headers["x-request-id"] = caller.request_id
    query = urlencode(call.query)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": call.method,
        "scheme": "http",
        # ASGI: ``path`` is decoded, ``raw_path`` as sent (a key's comma or space is escaped there).
        "path": unquote(call.path),
        "raw_path": call.path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": caller.client,
        "server": ("bridgehead-mcp", 80),
        "state": {VIA: f"mcp:{tool}"},
    }
    sent = False
    status = 500
    response_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> Any:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def reply(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for key, value in message.get("headers", ()):
                response_headers[key.decode("latin-1").lower()] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, reply)  # type: ignore[arg-type]
    raw = b"".join(chunks)
    try:
        # JSON numbers stay numbers (12.5 for 12.50): structured content is JSON, where they are equal.
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = raw.decode("utf-8", "replace")
    return Reply(status, response_headers, decoded)
