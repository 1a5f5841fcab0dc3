"""The ASGI plumbing the local fakes share: lifespan acknowledgement and reading a whole request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ("read_request",)


async def read_request(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> tuple[bytes, dict[str, str]] | None:
    """(body, lower-cased headers) of an HTTP request; None after answering a lifespan scope."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return None
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    return body, {k.decode().lower(): v.decode() for k, v in scope["headers"]}
