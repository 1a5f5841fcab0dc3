"""The two hot reads answered without entering Litestar: one row by key, and a JSON page of a list.

``FastReads`` sits where Litestar's own ASGI handler sits (``create_app`` installs it in front of
``app.asgi_handler``), so a request reaches it after Litestar's lifespan dispatch and with the send
that runs the app's ``before_send`` hooks: the request id header and the access-log line, the
request metrics, the console's counter and a deprecated version's headers are the same code on
both paths. In one pass it does what Litestar's middleware, guards and handler do for
``GET /{version}/{resource}/{key}`` and ``GET /{version}/{resource}``: the request id (bound into
the log context), authentication from the verifier's cache, the resource's read authorization
with its row filters, the readiness gate, then one database hop into ``ResourceReads`` (the very
functions the Litestar handlers call), and the in-progress gauge around it.

It answers only what it is sure of, a success, and hands everything else to Litestar untouched:
another method, path or media type, a token not verified yet or refused, an anonymous caller of
a resource that needs a token, a ``root_path``, an ``Origin`` header when CORS is configured, a
gateway still waiting for its database. Rate limits configured: it is not installed at all. A
read that raises (404, 400, 406, 504, ...) is handed over with its exception in the scope, which
the Litestar handler raises in place of reading again (``gateway.resources.carried``): the answer
is Litestar's own and the database is asked once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar._asgi.utils import is_valid_host
from litestar.enums import ScopeType
from litestar.routes import HTTPRoute

from gateway.auth.guards import authorize_read
from gateway.auth.middleware import is_public, known_principal
from gateway.exceptions import Forbidden, NotAcceptable, Unauthorized
from gateway.metrics import IN_PROGRESS
from gateway.negotiation import JSON, choose_media_type
from gateway.protection import counted, tightest
from gateway.request_id import access_log, bind_request_id, unbind_request_id
from gateway.resources import CARRIED, answered, query_items

if TYPE_CHECKING:
    from collections.abc import Sequence

    from litestar.routes import BaseRoute
    from litestar.types import ASGIApp, Receive, Scope, Send

    from gateway.context import GatewayContext
    from gateway.rate_limit import Limit, Verdict
    from gateway.resources import Answer, ResourceReads

__all__ = ("FastReads",)

_CONTENT_TYPE = (b"content-type", JSON.encode())


@dataclass(frozen=True, slots=True)
class _Route:
    reads: ResourceReads
    list_template: str
    get_template: str
    reserved: frozenset[str]
    """Literal segments after ``/{version}/{resource}/`` that other routes own (``aggregate``): not keys."""


class FastReads:
    """ASGI app: the success path of the two hot reads, else ``app`` (Litestar's handler) as it is."""

    def __init__(
        self,
        app: ASGIApp,
        ctx: GatewayContext,
        reads: dict[tuple[str, str], ResourceReads],
        routes: Sequence[BaseRoute],
        *,
        cors: bool,
        limits: Sequence[Limit] = (),
    ) -> None:
        self.app = app
        self.ctx = ctx
        self.cors = cors
        self.limits = tuple(limits)
        self.answered = 0
        """Requests answered here, not by Litestar (tests check that the hot reads really come here)."""
        self._routes = _routes(reads, routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("method") != "GET" or not await self._answer(scope, send):
            await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> bool:
        """Answer the request and return True, or return False having sent nothing."""
        if scope.get("root_path") or not self.ctx.readiness.checked:
            return False
        parts = scope["path"].split("/")
        if len(parts) == 3:
            key = None
        elif len(parts) == 4:
            key = parts[3]
        else:
            return False
        route = self._routes.get((parts[1], parts[2]))
        if route is None or parts[0] or (key is not None and (not key or key in route.reserved)):
            return False
        authorization = accept = if_none_match = None
        for name, value in scope["headers"]:  # one of each, or Litestar decides which counts
            if name == b"authorization":
                if authorization is not None:
                    return False
                authorization = value.decode("latin-1")
            elif name == b"accept":
                if accept is not None:
                    return False
                accept = value.decode("latin-1")
            elif name == b"if-none-match":
                if if_none_match is not None:
                    return False
                if_none_match = value.decode("latin-1")
            elif name == b"host":
                if not is_valid_host(value):
                    return False
            elif name == b"origin" and self.cors:
                return False
        principal = known_principal(authorization, self.ctx.verifier)
        if principal is None:
            return False
        reads = route.reads
        try:
            access = authorize_read(reads.resource, principal, quiet=True)  # Litestar logs the refusal
            if key is None and choose_media_type(accept) != JSON:
                return False  # an export: Litestar streams it
        except (Unauthorized, Forbidden, NotAcceptable):
            return False
        if self.limits and not await self._within_limits(scope, principal):
            return False  # the middleware answers the 429 from the verdict recorded
        items = query_items(scope)
        state = scope["state"]
        bound = bind_request_id(scope)
        IN_PROGRESS.inc()
        try:
            try:
                if key is None:
                    answer = await self.ctx.executor.run(reads.page, access, items, scope["path"])
                else:
                    answer = await self.ctx.executor.run(reads.one, access, accept, items, key, if_none_match)
            except Exception as exc:  # Litestar answers it (and does not read again)
                state[CARRIED] = exc
                return False
            scope["user"] = principal
            scope["auth"] = None
            scope["path_template"] = route.list_template if key is None else route.get_template
            answered(scope, answer)
            self.answered += 1
            try:
                await _send(send, answer, tightest(scope) if self.limits else None)
            finally:
                access_log(scope, interrupted=True)  # a no-op when the response ended normally
            return True
        finally:
            IN_PROGRESS.dec()
            unbind_request_id(bound)

    async def _within_limits(self, scope: Scope, principal: Any) -> bool:
        """Count the request against every limit, as the middleware would; False at the first one past."""
        scope["user"] = principal  # what the per-identity limit counts (Litestar sets it again if it answers)
        for limit in self.limits:
            verdict = await counted(limit, scope)
            if verdict is not None and not verdict.allowed:
                return False
        return True


async def _send(send: Send, answer: Answer, limited: Verdict | None = None) -> None:
    """The response Litestar's ``Response(body, status_code=..., media_type=JSON, headers=...)`` sends."""
    fields = answer.headers if limited is None else {**answer.headers, **limited.headers()}
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in fields.items()]
    if answer.status != 304:
        headers.append(_CONTENT_TYPE)
        headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})


def _routes(reads: dict[tuple[str, str], ResourceReads], routes: Sequence[BaseRoute]) -> dict[tuple[str, str], _Route]:
    """The fast-path routes, their templates as Litestar names them (metrics, access log)."""
    templates: dict[str, str] = {}
    reserved: dict[tuple[str, str], set[str]] = {}
    for route in routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                if handler.name:
                    templates[handler.name] = route.path_format
        segments = route.path_format.split("/")
        if len(segments) >= 4 and not segments[3].startswith("{"):
            reserved.setdefault((segments[1], segments[2]), set()).add(segments[3])
    found = {}
    for (version, name), resource_reads in reads.items():
        qualified = resource_reads.resource.qualified_name
        list_template, get_template = templates.get(f"{qualified}.list"), templates.get(f"{qualified}.get")
        path = f"/{version}/{name}"
        if list_template != path or get_template != f"{path}/{{key}}" or is_public(path) or is_public(f"{path}/-"):
            continue  # not where this module expects it: Litestar serves it
        taken = frozenset(reserved.get((version, name), ()))
        found[(version, name)] = _Route(resource_reads, list_template, get_template, taken)
    return found
