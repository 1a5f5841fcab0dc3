"""A real uvicorn server in a thread on 127.0.0.1, for tests that need real sockets in this process.

Real TCP (kernel buffers, flow control, resets) where the ASGI test client has
none, while the test can still look inside the app (pools, export slots).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

__all__ = ("LiveServer", "live_server")


@dataclass(frozen=True)
class LiveServer:
    base: str
    port: int
    app: Any

    @property
    def ctx(self) -> Any:
        """The app's ``GatewayContext``."""
        return self.app.state["ctx"]


@contextmanager
def live_server(app: Any) -> Iterator[LiveServer]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True, name="live-server")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", port, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
