"""``bridgehead sandbox``: the connector fakes served over HTTP with uvicorn, no framework needed.

Both fakes share one port: Shopify answers under ``/admin/``, Xero everything else
(``/connect/token``, ``/connections``, ``/api.xro/2.0/``), so the demo mapping points both
destinations at the same ``http://127.0.0.1:8787``. ``route`` does the same for ``httpx.MockTransport``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from sync.connectors.shopify.fake import CostBucket, FakeShopify, Faults
from sync.connectors.xero.fake import FakeXero, XeroFaults

__all__ = ("SandboxServer", "Sandboxes", "make_fake", "make_xero")


def make_fake(token: str, fault_rate: float = 0.0, bucket: float = 1000.0, restore: float = 100.0) -> FakeShopify:
    return FakeShopify(token=token, faults=Faults(rate=fault_rate), bucket=CostBucket(bucket, restore))


def make_xero(fault_rate: float = 0.0, **limits: Any) -> FakeXero:
    return FakeXero(faults=XeroFaults(rate=fault_rate), **limits)


class Sandboxes:
    """Both fakes behind one ASGI app (and one MockTransport handler)."""

    def __init__(self, shopify: FakeShopify, xero: FakeXero) -> None:
        self.shopify, self.xero = shopify, xero

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/admin/"):
            return self.shopify.handler(request)
        return self.xero.handler(request)

    async def asgi(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/admin/"):
            await self.xero.asgi(scope, receive, send)
        else:  # Shopify's, and the lifespan scope (which the Shopify fake acknowledges)
            await self.shopify.asgi(scope, receive, send)


class SandboxServer:
    """Run a fake on 127.0.0.1 in a background thread (tests, benchmarks); port 0 picks a free one.

    ``fake`` is a ``FakeShopify``, a ``FakeXero`` or ``Sandboxes`` (anything with ``.asgi``)."""

    def __init__(self, fake: Any, port: int = 0) -> None:
        import uvicorn

        self.fake = fake
        config = uvicorn.Config(
            fake.asgi,
            host="127.0.0.1",
            port=port,
            log_level="error",
            access_log=False,
            lifespan="off",
            interface="asgi3",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> SandboxServer:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        socket = self.server.servers[0].sockets[0]
        return f"http://127.0.0.1:{socket.getsockname()[1]}"

    def __exit__(self, *_exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
