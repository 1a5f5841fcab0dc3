"""``bridgehead sandbox``: the connector fakes served over HTTP with uvicorn, no framework needed."""

from __future__ import annotations

import threading
import time
from typing import Any

from sync.connectors.shopify.fake import CostBucket, FakeShopify, Faults

__all__ = ("SandboxServer", "make_fake")


def make_fake(token: str, fault_rate: float = 0.0, bucket: float = 1000.0, restore: float = 100.0) -> FakeShopify:
    return FakeShopify(token=token, faults=Faults(rate=fault_rate), bucket=CostBucket(bucket, restore))


class SandboxServer:
    """Run a fake on 127.0.0.1 in a background thread (tests, benchmarks); port 0 picks a free one."""

    def __init__(self, fake: FakeShopify, port: int = 0) -> None:
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
