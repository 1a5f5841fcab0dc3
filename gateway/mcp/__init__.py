"""The MCP server for AI agents: tools generated from the mapping, answered by the REST routes."""

from __future__ import annotations

from gateway.mcp.server import McpEndpoint, build_server, stdio_identity

__all__ = ("McpEndpoint", "build_server", "stdio_identity")
