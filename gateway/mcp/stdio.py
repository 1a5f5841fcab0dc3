"""``bridgehead mcp -c FILE``: the MCP server over stdio, for desktop clients that start it themselves.

The same app as ``serve`` is built and started (its lifespan runs), but nothing listens on a
port: the SDK reads JSON-RPC from stdin and writes to stdout, and each tool call is served
in-process by the REST route it stands for, with the token from ``BRIDGEHEAD_TOKEN`` (or
``--token``) verified like a bearer token on every call. Logs go to stderr: stdout is the wire.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp.server.stdio import stdio_server

from gateway.auth.middleware import authenticate
from gateway.mcp.server import build_server, stdio_identity

if TYPE_CHECKING:
    from litestar import Litestar

    from gateway.context import GatewayContext

__all__ = ("serve_stdio",)


async def serve_stdio(app: Litestar, token: str | None) -> None:
    """Serve MCP on stdin/stdout until the client closes it.

    Raises:
        Unauthorized: the token does not verify (checked before the first message is read).
    """
    ctx: GatewayContext = app.state["ctx"]
    await authenticate(f"Bearer {token}" if token else None, ctx.verifier, "/mcp")
    async with app.lifespan():
        server = build_server(ctx, lambda: app, stdio_identity(ctx, token))
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
