"""The MCP server: the official SDK's low-level ``Server`` with the tools of ``tools.py``.

Over HTTP it is ``/mcp`` inside the Litestar app (Streamable HTTP, stateless and JSON
answers, so any gateway process can serve any call and nothing is kept in memory between
calls); the auth middleware has verified the token and ``token_guard`` has refused a
missing one before the SDK sees the request. Over stdio (``bridgehead mcp``) the token comes
from the environment and is verified by the same ``authenticate`` at every call. Either way
each call is answered by the REST route it stands for (``dispatch.py``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import mcp_types as types
import msgspec
import structlog
from mcp.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from gateway.auth.middleware import authenticate
from gateway.auth.principal import Principal
from gateway.exceptions import GatewayError, ServiceUnavailable
from gateway.mcp.dispatch import Caller, Reply, rest_call, send
from gateway.mcp.tools import describe, tools_for
from gateway.problems import problem_of
from gateway.request_id import request_id

if TYPE_CHECKING:
    from litestar import Litestar
    from mcp.server import ServerRequestContext

    from gateway.context import GatewayContext
    from gateway.mcp.tools import ToolSpec

__all__ = ("build_server", "session_manager", "stdio_identity")

log = structlog.get_logger("bridgehead.mcp")

Identify = Callable[["ServerRequestContext[Any, Any]"], Awaitable[tuple[Principal, Caller]]]
"""Who is calling, from the SDK's request context."""

_INSTRUCTIONS = (
    "Tools over a legacy database, through its REST API's mapping: values are in API form (ISO dates, "
    "decimals, code names). Call describe_resources first; list tools page with next_cursor; aggregate "
    "tools compute totals in the database. A row filter may limit what this token sees."
)


def _summary(spec: ToolSpec, body: Any) -> str:
    name = spec.resource.name if spec.resource else ""
    if spec.kind in ("list", "aggregate") and isinstance(body, dict):
        count = len(body.get("data") or [])
        what = "groups" if spec.kind == "aggregate" else "rows"
        more = "; more follow: call again with cursor=next_cursor" if body.get("next_cursor") else ""
        return f"{count} {name} {what}{more}."
    if spec.kind == "get":
        return f"One {name} row."
    if spec.kind == "create":
        return f"Created one {name} row."
    if spec.kind == "update":
        return f"Changed one {name} row."
    return f"Ran {spec.action} on one {name} row."


def _result(text: str, structured: dict[str, Any], *, error: bool = False) -> types.CallToolResult:
    # The JSON goes in the text too: clients that show only text still get the data (MCP: SHOULD).
    payload = json.dumps(structured, ensure_ascii=False, default=str)
    return types.CallToolResult(
        content=[types.TextContent(text=f"{text}\n{payload}")], structured_content=structured, is_error=error
    )


def _error(problem: dict[str, Any]) -> types.CallToolResult:
    lines = [str(problem.get("detail") or problem.get("title") or "the call failed")]
    for entry in problem.get("errors") or []:
        where = entry.get("parameter") or entry.get("field")
        if entry.get("detail") and (len(problem["errors"]) > 1 or entry["detail"] != lines[0]):
            lines.append(f"- {where}: {entry['detail']}" if where else f"- {entry['detail']}")
    return types.CallToolResult(
        content=[types.TextContent(text="\n".join(lines))], structured_content=problem, is_error=True
    )


def _structured(spec: ToolSpec, reply: Reply) -> dict[str, Any]:
    body = reply.body
    if spec.kind in ("get", "create", "update"):
        return {"data": body, "etag": reply.headers.get("etag")}
    return body if isinstance(body, dict) else {"data": body}


def build_server(ctx: GatewayContext, app: Callable[[], Litestar | None], identify: Identify) -> Server[Any]:
    """The SDK server whose tools are generated per caller; ``app`` serves the REST calls they make."""

    async def list_tools(
        request: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        principal, _ = await identify(request)
        return types.ListToolsResult(tools=[spec.tool for spec in tools_for(ctx, principal).values()])

    async def call_tool(request: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> Any:
        try:
            principal, caller = await identify(request)
        except GatewayError as exc:
            return _error(msgspec_problem(exc))
        tools = tools_for(ctx, principal)
        spec = tools.get(params.name)
        arguments = params.arguments or {}
        if spec is None:
            known = ", ".join(tools) or "none: this token may read no resource"
            return _error({"status": 404, "detail": f"unknown tool {params.name!r} (tools: {known})"})
        if spec.kind == "describe":
            described = describe(ctx, principal, tools)
            names = ", ".join(described["resources"])
            return _result(f"{len(described['resources'])} resources: {names}.", described)
        served_by = app()
        if served_by is None:
            return _error(msgspec_problem(ServiceUnavailable("the gateway is starting; retry shortly")))
        try:
            call = rest_call(spec, arguments)
        except GatewayError as exc:
            return _error(msgspec_problem(exc))
        reply = await send(served_by, call, caller, params.name)
        log.info("mcp tool call", tool=params.name, subject=principal.subject, status=reply.status)
        if reply.status >= 400:
            problem = (
                reply.body if isinstance(reply.body, dict) else {"status": reply.status, "detail": str(reply.body)}
            )
            return _error(problem)
        structured = _structured(spec, reply)
        return _result(_summary(spec, structured), structured)

    return Server(
        "bridgehead",
        version="1",
        title=ctx.mapping.api.title,
        instructions=ctx.mapping.mcp.instructions or _INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def msgspec_problem(error: GatewayError) -> dict[str, Any]:
    """A gateway error as the problem details REST would answer with."""
    problem: dict[str, Any] = msgspec.to_builtins(problem_of(error))
    return problem


async def _http_identity(request: ServerRequestContext[Any, Any]) -> tuple[Principal, Caller]:
    http = request.request
    if http is None:
        raise ServiceUnavailable("no HTTP request behind this call")
    principal = http.scope.get("user")
    if not isinstance(principal, Principal):
        raise RuntimeError("/mcp was not authenticated")
    client = http.scope.get("client") or ("127.0.0.1", 0)
    caller = Caller(http.headers.get("authorization"), (client[0], client[1]), request_id(http.scope))
    return principal, caller


def stdio_identity(ctx: GatewayContext, token: str | None) -> Identify:
    """The caller of ``bridgehead mcp``: its token, verified again at every call (it may expire)."""
    header = f"Bearer {token}" if token else None

    async def identify(_: ServerRequestContext[Any, Any]) -> tuple[Principal, Caller]:
        principal = await authenticate(header, ctx.verifier, "/mcp")
        return principal, Caller(header)

    return identify


def session_manager(ctx: GatewayContext, app: Callable[[], Litestar | None]) -> StreamableHTTPSessionManager:
    """The SDK's Streamable HTTP transport for ``/mcp`` (stateless, JSON answers), callers from the app's auth."""
    return StreamableHTTPSessionManager(build_server(ctx, app, _http_identity), json_response=True, stateless=True)
