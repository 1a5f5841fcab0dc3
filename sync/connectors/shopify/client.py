"""A thin GraphQL client over an injected ``httpx.Client``: pacing, classification, retries.

One ``execute`` is one logical request: paced by ``CostThrottle``, retried by
stamina on ``Retriable`` (5xx, timeouts, dropped connections, 429 with its
``Retry-After``, ``THROTTLED`` with the bucket's restore time, ``INTERNAL_SERVER_ERROR``), and turned
into a ``Fatal`` when no retry can help; ``MAX_COST_EXCEEDED`` is returned at once as
``CostExceeded`` for the caller to split. Codes and outcomes: ``errors.py``.
``userErrors`` are data, left to the connector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from sync.connectors.shopify.auth import ShopifyTokenAuth
from sync.connectors.shopify.errors import graphql_error
from sync.connectors.shopify.throttle import CostThrottle
from sync.exceptions import Fatal, RateLimited, Retriable
from sync.outcomes import classify_exception, classify_response
from sync.retry import BackoffHook, retrying

if TYPE_CHECKING:
    from sync.config import DestinationConfig
    from sync.rate_budget import SharedCostThrottle

__all__ = ("ShopifyClient",)


class ShopifyClient:
    def __init__(
        self,
        http: httpx.Client,
        destination: DestinationConfig,
        *,
        throttle: CostThrottle | SharedCostThrottle | None = None,
        attempts: int = 6,
    ) -> None:
        self.http = http
        self.url = f"{destination.url.rstrip('/')}/admin/api/{destination.api_version}/graphql.json"
        self.auth = ShopifyTokenAuth(destination.token)
        self.timeout = destination.timeout_s
        self.throttle = throttle or CostThrottle()
        self.attempts = attempts
        self.hook = BackoffHook()
        self.requests = 0

    def execute(self, query: str, variables: dict[str, Any] | None = None, *, cost: float = 10) -> dict[str, Any]:
        """Run one GraphQL operation and return its ``data``.

        Raises:
            Retriable: still failing after every attempt.
            Fatal: authentication, a wrong URL/version, or a query the API rejects.
        """
        # A fresh backoff per request (exponent restarts), one shared log of waits for tests and metrics.
        hook = BackoffHook()
        hook.waits = self.hook.waits
        for attempt in retrying(self.attempts, hook):
            with attempt:
                # CostExceeded is not Retriable: the same query costs the same every time, so it
                # goes straight back to the caller, who splits it.
                return self._once(query, variables or {}, cost)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, query: str, variables: dict[str, Any], cost: float) -> dict[str, Any]:
        self.throttle.before(cost)
        self.requests += 1
        try:
            response = self.http.post(
                self.url, json={"query": query, "variables": variables}, auth=self.auth, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise classify_exception(exc) from None
        if (error := classify_response(response)) is not None:
            raise error
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            raise Retriable("the response was not JSON") from None
        self.throttle.after(body.get("extensions"))
        errors = body.get("errors") or []
        codes = [(e.get("extensions") or {}).get("code") for e in errors]
        if "THROTTLED" in codes:
            requested = ((body.get("extensions") or {}).get("cost") or {}).get("requestedQueryCost", cost)
            raise RateLimited("THROTTLED", self.throttle.restore_time(float(requested)))
        if errors:
            # The worst outcome wins: one fatal error stops the run even beside a retriable one.
            found = [graphql_error(c, str(e.get("message"))) for c, e in zip(codes, errors, strict=True)]
            raise next((f for f in found if isinstance(f, Fatal)), found[0])
        return dict(body.get("data") or {})
