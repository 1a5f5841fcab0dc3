"""A faithful local fake of the Shopify GraphQL Admin API: one handler for tests and the sandbox.

``FakeShopify.handler`` is an ``httpx.MockTransport`` handler (STYLE C6) and
``FakeShopify.asgi`` serves the very same logic over HTTP for ``bridgehead
sandbox``. Around the shop (``fake_shop.py``) it adds what the notes say the real
API does at the edge: the access-token check, the calculated-cost leaky bucket
with ``THROTTLED`` answered as HTTP 200, ``extensions.cost`` on every response,
and injected faults (429 with a fractional ``Retry-After``, 5xx, read timeouts before
or after the write was applied, and connections dropped before or after the write).
Over HTTP (the sandbox) a timeout really hangs for ``hang_s`` and a drop really cuts
the connection mid-response, so a client's own timeouts and error handling are tested,
not an immediate 504.
"""

from __future__ import annotations

import asyncio
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
    InlineFragmentNode,
    OperationDefinitionNode,
    build_schema,
    graphql_sync,
    parse,
    value_from_ast_untyped,
)

from sync.connectors.asgi import read_request
from sync.connectors.shopify.fake_shop import FakeShop

__all__ = ("FAULT_KINDS", "CostBucket", "FakeShopify", "Faults")

SCHEMA = build_schema(Path(__file__).with_name("schema.graphql").read_text())
SCHEMA.type_map["Node"].resolve_type = lambda value, _info, _type: value["__typename"]  # type: ignore[attr-defined]
FAULT_KINDS = ("429", "500", "503", "internal_error", "timeout", "timeout_after_write", "drop", "drop_after_write")
"""``internal_error`` is Shopify's HTTP 200 with ``errors[].extensions.code == INTERNAL_SERVER_ERROR``."""
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
        hang_s: float = 30.0,
    ) -> None:
        self.token, self.api_version = token, api_version
        self.shop = FakeShop(api_version)
        self.bucket = bucket or CostBucket()
        self.faults = faults or Faults()
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.max_query_cost = MAX_QUERY_COST
        """How long a ``timeout`` fault keeps an HTTP client waiting (longer than its read timeout)."""
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
            if fault == "internal_error":
                message = "Internal error. Looks like something went wrong on our end."
                error = {"message": message, "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
                return 200, {"Content-Type": "application/json"}, json.dumps({"errors": [error]}).encode(), None
            if fault in ("timeout", "drop"):
                return 504, {}, b"", fault  # nothing applied; the client's read times out or the line drops
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
        if cost > self.max_query_cost:
            limit = self.max_query_cost
            message = f"Query cost is {cost}, which exceeds the single query max cost limit ({limit})."
            error = {"message": message,
                     "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": limit}}  # fmt: skip
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
        if fault in ("timeout", "timeout_after_write"):
            raise httpx.ReadTimeout("timed out (injected)", request=request)
        if fault in ("drop", "drop_after_write"):
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response (injected)", request=request
            )
        return httpx.Response(status, headers=out_headers, content=body)

    async def asgi(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """A plain ASGI app for ``bridgehead sandbox`` (uvicorn), no framework needed."""
        request = await read_request(scope, receive, send)
        if request is None:
            return
        body, headers = request
        status, out_headers, content, fault = self.exchange(scope["method"], scope["path"], headers, body)
        if fault in ("timeout", "timeout_after_write"):
            # A real read timeout: no byte of an answer until long after the client gave up.
            await asyncio.sleep(self.hang_s)
            return
        if fault in ("drop", "drop_after_write"):
            # A real dropped connection: the answer starts, then the line goes dead. (Raising before
            # the response starts would make uvicorn answer a tidy 500 instead.)
            length = str(max(len(content), 64)).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]})
            await send({"type": "http.response.body", "body": content[:8], "more_body": True})
            raise ConnectionResetError(f"connection dropped (injected {fault})")
        raw = [(k.lower().encode(), v.encode()) for k, v in out_headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": content})


def _requested_cost(document: Any, variables: dict[str, Any]) -> int:
    """Shopify's requested query cost: what a query *could* return, before it runs.

    As the rate-limit docs count it: a scalar costs 0, an object 1, a connection
    ``2 + first * (cost of one node)`` (so nested connections multiply), ``nodes(ids:)``
    one node per id, and a mutation field 10 whatever it selects.
    """
    total = 0
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        for selection in definition.selection_set.selections:
            if definition.operation.value == "mutation":
                total += MUTATION_COST
            else:
                total += _selection_cost(selection, variables)
    return total


def _selection_cost(node: Any, variables: dict[str, Any]) -> int:
    if isinstance(node, InlineFragmentNode):
        return _children_cost(node, variables)
    if not isinstance(node, FieldNode) or node.selection_set is None:
        return 0  # a scalar (fragment spreads are not used by our clients)
    if node.name.value == "pageInfo":
        return 0  # part of the connection's price
    args = {a.name.value: value_from_ast_untyped(a.value, variables) for a in node.arguments or ()}
    if "first" in args or "last" in args:
        size = int(args.get("first") or args.get("last") or 0)
        per_node = sum(
            _node_cost(child, variables) for child in node.selection_set.selections if isinstance(child, FieldNode)
        )
        return 2 + size * max(1, per_node)
    if "ids" in args:
        return len(args["ids"] or ()) * max(1, _children_cost(node, variables))
    return 1 + _children_cost(node, variables)


def _node_cost(child: FieldNode, variables: dict[str, Any]) -> int:
    """Cost of one element of a connection, read from its ``nodes`` or ``edges { node }`` selection."""
    if child.name.value == "nodes":
        return 1 + _children_cost(child, variables)
    if child.name.value == "edges":
        inner = [s for s in child.selection_set.selections if isinstance(s, FieldNode)] if child.selection_set else []
        return sum(1 + _children_cost(s, variables) for s in inner if s.name.value == "node")
    return _selection_cost(child, variables)


def _children_cost(node: Any, variables: dict[str, Any]) -> int:
    return sum(_selection_cost(s, variables) for s in node.selection_set.selections) if node.selection_set else 0
