"""A faithful local fake of the Shopify GraphQL Admin API: one handler for tests and the sandbox.

``FakeShopify.handler`` is an ``httpx.MockTransport`` handler (STYLE C6) and
``FakeShopify.asgi`` serves the very same logic over HTTP for ``bridgehead
sandbox``. Around the shop (``fake_shop.py``) it adds what the notes say the real
API does at the edge: the access-token check, the calculated-cost leaky bucket
with ``THROTTLED`` answered as HTTP 200, ``extensions.cost`` on every response,
and injected faults (429 with a fractional ``Retry-After``, 5xx, timeouts, and a
connection dropped *after* the write was applied).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from graphql import (
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    build_schema,
    graphql_sync,
    parse,
    value_from_ast_untyped,
)

from sync.connectors.shopify.fake_shop import FakeShop

__all__ = ("FAULT_KINDS", "CostBucket", "FakeShopify", "Faults")

SCHEMA = build_schema(Path(__file__).with_name("schema.graphql").read_text())
SCHEMA.type_map["Node"].resolve_type = lambda value, _info, _type: value["__typename"]  # type: ignore[attr-defined]
FAULT_KINDS = ("429", "500", "503", "timeout", "drop_after_write")
MUTATION_COST = 10
MAX_QUERY_COST = 1000


@dataclass
class CostBucket:
    """Shopify's calculated-cost leaky bucket (Standard plan: 1000 points, 100 restored per second)."""

    maximum: float = 1000.0
    restore_rate: float = 100.0
    clock: Callable[[], float] = time.monotonic
    available: float = field(init=False)
    _at: float = field(init=False)

    def __post_init__(self) -> None:
        self.available, self._at = self.maximum, self.clock()

    def refill(self) -> float:
        now = self.clock()
        self.available = min(self.maximum, self.available + (now - self._at) * self.restore_rate)
        self._at = now
        return self.available

    def status(self) -> dict[str, float]:
        return {"maximumAvailable": self.maximum, "currentlyAvailable": round(self.available, 1),
                "restoreRate": self.restore_rate}  # fmt: skip


@dataclass
class Faults:
    """Random faults on a share of requests, plus a queue of exact ones for targeted tests."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 7
    queued: list[str] = field(default_factory=list)
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def pick(self) -> str | None:
        kind = self.queued.pop(0) if self.queued else None
        if kind is None and self.rate and self._rng.random() < self.rate:
            kind = self._rng.choice(self.kinds)
        if kind:
            self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


class FakeShopify:
    """The fake shop behind an HTTP face. Thread-safe: one request at a time, like a tiny shop."""

    def __init__(
        self,
        *,
        token: str = "sandbox-token",
        api_version: str = "2026-04",
        bucket: CostBucket | None = None,
        faults: Faults | None = None,
        retry_after: float = 0.5,
    ) -> None:
        self.token, self.api_version = token, api_version
        self.shop = FakeShop(api_version)
        self.bucket = bucket or CostBucket()
        self.faults = faults or Faults()
        self.retry_after = retry_after
        self.requests = 0
        self.throttled = 0
        self._lock = threading.Lock()
        s = self.shop
        self._root = {
            "products": s.resolve_products, "customers": s.resolve_customers, "locations": s.resolve_locations,
            "nodes": s.resolve_nodes,
            "product": lambda _i, id: s.product_view(id) if id in s.products else None,
            "customer": lambda _i, id: s.customer_view(id) if id in s.customers else None,
            "inventoryItem": lambda i, id: (s.resolve_nodes(i, [id]) or [None])[0],
            "productSet": s.product_set, "customerSet": s.customer_set,
            "inventorySetQuantities": s.inventory_set_quantities,
            "productDelete": s.product_delete, "customerDelete": s.customer_delete,
        }  # fmt: skip

    # -- the HTTP exchange, transport-neutral ------------------------------------------------

    def exchange(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes, str | None]:
        """Answer one request: (status, headers, body, fault to act out after the answer is made)."""
        with self._lock:
            self.requests += 1
            if path != f"/admin/api/{self.api_version}/graphql.json" or method != "POST":
                return 404, {}, b'{"errors":"Not Found"}', None
            if headers.get("x-shopify-access-token") != self.token:
                msg = b'{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}'
                return 401, {}, msg, None
            fault = self.faults.pick()
            if fault == "429":
                body429 = (
                    b'{"errors":"Exceeded 2 calls per second for api client. '
                    b'Reduce request rates to resume uninterrupted service."}'
                )
                return 429, {"Retry-After": str(self.retry_after)}, body429, None
            if fault in ("500", "503"):
                return int(fault), {}, b'{"errors":"Internal error"}', None
            if fault == "timeout":
                return 504, {}, b"", "timeout"  # nothing applied; the client sees its read time out
            status, answer = self._graphql(body)
            return status, {"Content-Type": "application/json"}, json.dumps(answer).encode(), fault

    def _graphql(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            payload = json.loads(body)
            document = parse(payload["query"])
        except (ValueError, KeyError, TypeError, GraphQLError) as exc:
            return 400, {"errors": [{"message": f"Parse error: {exc}"}]}
        variables = payload.get("variables") or {}
        cost = _requested_cost(document, variables)
        available = self.bucket.refill()
        extensions: dict[str, Any] = {"cost": {"requestedQueryCost": cost, "actualQueryCost": None,
                                               "throttleStatus": self.bucket.status()}}  # fmt: skip
        if cost > MAX_QUERY_COST:
            message = f"Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST})."
            error = {"message": message,
                     "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": MAX_QUERY_COST}}  # fmt: skip
            return 200, {"errors": [error], "extensions": extensions}
        if available < cost:
            self.throttled += 1
            error = {"message": "Throttled", "extensions": {"code": "THROTTLED",
                     "documentation": "https://shopify.dev/api/usage/rate-limits"}}  # fmt: skip
            return 200, {"errors": [error], "extensions": extensions}
        result = graphql_sync(SCHEMA, payload["query"], root_value=self._root, variable_values=variables,
                              operation_name=payload.get("operationName"))  # fmt: skip
        self.bucket.available -= cost
        extensions["cost"]["actualQueryCost"] = cost
        extensions["cost"]["throttleStatus"] = self.bucket.status()
        answer: dict[str, Any] = {"data": result.data, "extensions": extensions}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        return 200, answer

    # -- faces -------------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        """``httpx.MockTransport`` handler."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, out_headers, body, fault = self.exchange(request.method, request.url.path, headers, request.read())
        if fault == "timeout":
            raise httpx.ReadTimeout("timed out (injected)", request=request)
        if fault == "drop_after_write":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response (injected)", request=request
            )
        return httpx.Response(status, headers=out_headers, content=body)

    async def asgi(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """A plain ASGI app for ``bridgehead sandbox`` (uvicorn), no framework needed."""
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, out_headers, content, fault = self.exchange(scope["method"], scope["path"], headers, body)
        if fault == "drop_after_write":
            raise ConnectionResetError("dropped after the write (injected)")  # uvicorn closes the connection
        raw = [(k.lower().encode(), v.encode()) for k, v in out_headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": content})


def _requested_cost(document: Any, variables: dict[str, Any]) -> int:
    """A simplified calculated cost: 10 per mutation field, 2 + ``first`` per connection, 1 per object."""
    total = 0
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        for selection in definition.selection_set.selections:
            if definition.operation.value == "mutation":
                total += MUTATION_COST
            elif isinstance(selection, FieldNode):
                total += _field_cost(selection, variables)
    return total


def _field_cost(node: FieldNode, variables: dict[str, Any]) -> int:
    args = {a.name.value: value_from_ast_untyped(a.value, variables) for a in node.arguments or ()}
    own = 2 + int(args["first"] or 0) if "first" in args else len(args["ids"] or ()) if "ids" in args else 1
    children = node.selection_set.selections if node.selection_set else ()
    paged = [
        s for s in children if isinstance(s, FieldNode) and any(a.name.value == "first" for a in s.arguments or ())
    ]
    nested = sum(_field_cost(s, variables) - 1 for s in paged)
    return own + nested
